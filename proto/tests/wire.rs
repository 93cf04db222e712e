//! Wire compatibility promised by the .proto comments.

use prost::Message;
use voicehost_proto::common::v1::TextChunk;
use voicehost_proto::llm::v1::LlmChunk;

/// tts's SpeakStream took `voicehost.llm.v1.LlmChunk` before it took `TextChunk`: a client
/// built then sends LlmChunk bytes, which must decode to the same TextChunk, and back.
#[test]
fn an_llm_chunk_on_the_wire_is_a_text_chunk() {
    let old = LlmChunk {
        text: "Paris is the capital.".into(),
        eot: true,
        dialog_id: "d-1".into(),
        turn: 3,
        index: 7,
        finish_reason: "stop".into(),
    };
    let bytes = old.encode_to_vec();
    let new = TextChunk::decode(bytes.as_slice()).unwrap();
    assert_eq!(new, TextChunk::from(old.clone()));
    assert_eq!(new.encode_to_vec(), bytes);
    assert_eq!(
        LlmChunk::decode(new.encode_to_vec().as_slice()).unwrap(),
        old
    );
}
