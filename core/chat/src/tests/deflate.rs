//! Messages are compressed (RFC 7692) once, and only for an audience that
//! takes compressed frames.

use super::*;

#[test]
fn a_message_is_compressed_only_when_someone_in_its_audience_takes_it() {
    let mut chat = immediate();
    join(&mut chat, 1, "lobby");
    join(&mut chat, 2, "lobby");
    let text = "a message long enough that compressing it makes it smaller, smaller, smaller";
    let out = chat.input(ClientId(1), text, at(10));
    let message = &out.deliveries[0].message;
    assert_eq!(message.deflated_frame(), None, "no one takes deflate");

    chat.set_deflate(ClientId(2), true);
    let out = chat.input(ClientId(1), text, at(20));
    let [delivery] = &out.deliveries[..] else {
        panic!("one delivery for the room: {:?}", out.deliveries);
    };
    assert_eq!(delivery.to.len(), 2, "one frame pair for everyone");
    let deflated = delivery.message.deflated_frame().expect("compressed once");
    assert!(deflated.len() < delivery.message.frame().len());
    assert_eq!(deflated[0] & 0x40, 0x40, "RSV1");
}
