//! Converter tests on a tiny synthetic CTranslate2 Whisper model: 1 encoder and 1 decoder
//! layer, state 4, 2 heads, 3 mel bins, 10 tokens.

use super::*;
use crate::ct2::Ct2Writer;
use std::collections::BTreeMap;

const STATE: usize = 4;

/// Little-endian f16 bytes of `values`.
fn f16_bytes(values: impl IntoIterator<Item = f32>) -> Vec<u8> {
    values
        .into_iter()
        .flat_map(|v| f16::from_f32(v).to_le_bytes())
        .collect()
}

/// Adds an f16 variable whose elements are 0, 1, 2, … so slices can be recognised.
fn ramp(w: &mut Ct2Writer, name: &str, shape: &[usize]) {
    let n: usize = shape.iter().product();
    w.variable(name, shape, DType::F16, f16_bytes((0..n).map(|i| i as f32)));
}

/// A fused bias of `parts` blocks where block `zero` is zeros (Whisper's key bias).
fn fused_bias(w: &mut Ct2Writer, name: &str, parts: usize, zero: usize) {
    fused_bias_sized(w, name, parts, zero, STATE);
}

fn fused_bias_sized(w: &mut Ct2Writer, name: &str, parts: usize, zero: usize, state: usize) {
    let values = (0..parts * state).map(|i| {
        if i / state == zero {
            0.0
        } else {
            (i + 1) as f32
        }
    });
    w.variable(name, &[parts * state], DType::F16, f16_bytes(values));
}

fn layer_common(w: &mut Ct2Writer, prefix: &str, state: usize) {
    for norm in ["self_attention/layer_norm", "ffn/layer_norm"] {
        ramp(w, &format!("{prefix}/{norm}/gamma"), &[state]);
        ramp(w, &format!("{prefix}/{norm}/beta"), &[state]);
    }
    ramp(
        w,
        &format!("{prefix}/self_attention/linear_0/weight"),
        &[3 * state, state],
    );
    fused_bias_sized(
        w,
        &format!("{prefix}/self_attention/linear_0/bias"),
        3,
        1,
        state,
    );
    ramp(
        w,
        &format!("{prefix}/self_attention/linear_1/weight"),
        &[state, state],
    );
    ramp(
        w,
        &format!("{prefix}/self_attention/linear_1/bias"),
        &[state],
    );
    ramp(
        w,
        &format!("{prefix}/ffn/linear_0/weight"),
        &[4 * state, state],
    );
    ramp(w, &format!("{prefix}/ffn/linear_0/bias"), &[4 * state]);
    ramp(
        w,
        &format!("{prefix}/ffn/linear_1/weight"),
        &[state, 4 * state],
    );
    ramp(w, &format!("{prefix}/ffn/linear_1/bias"), &[state]);
}

fn synthetic() -> Ct2Writer {
    synthetic_sized(STATE)
}

/// The synthetic model with `state` wide layers.
fn synthetic_sized(state: usize) -> Ct2Writer {
    let mut w = Ct2Writer::default();
    ramp(&mut w, "encoder/conv1/weight", &[state, 3, 3]);
    ramp(&mut w, "encoder/conv1/bias", &[state]);
    ramp(&mut w, "encoder/conv2/weight", &[state, state, 3]);
    ramp(&mut w, "encoder/conv2/bias", &[state]);
    ramp(&mut w, "encoder/position_encodings/encodings", &[6, state]);
    layer_common(&mut w, "encoder/layer_0", state);
    ramp(&mut w, "encoder/layer_norm/gamma", &[state]);
    ramp(&mut w, "encoder/layer_norm/beta", &[state]);
    w.variable(
        "encoder/num_heads",
        &[],
        DType::I16,
        2i16.to_le_bytes().to_vec(),
    );

    ramp(&mut w, "decoder/embeddings/weight", &[10, state]);
    ramp(&mut w, "decoder/position_encodings/encodings", &[5, state]);
    layer_common(&mut w, "decoder/layer_0", state);
    let att = "decoder/layer_0/attention";
    ramp(&mut w, &format!("{att}/layer_norm/gamma"), &[state]);
    ramp(&mut w, &format!("{att}/layer_norm/beta"), &[state]);
    ramp(&mut w, &format!("{att}/linear_0/weight"), &[state, state]);
    ramp(&mut w, &format!("{att}/linear_0/bias"), &[state]);
    ramp(
        &mut w,
        &format!("{att}/linear_1/weight"),
        &[2 * state, state],
    );
    fused_bias_sized(&mut w, &format!("{att}/linear_1/bias"), 2, 0, state);
    ramp(&mut w, &format!("{att}/linear_2/weight"), &[state, state]);
    ramp(&mut w, &format!("{att}/linear_2/bias"), &[state]);
    ramp(&mut w, "decoder/layer_norm/gamma", &[state]);
    ramp(&mut w, "decoder/layer_norm/beta", &[state]);
    w.variable(
        "decoder/num_heads",
        &[],
        DType::I16,
        2i16.to_le_bytes().to_vec(),
    );
    w.variable("decoder/activation", &[], DType::I8, vec![3]);
    w.alias("decoder/projection/weight", "decoder/embeddings/weight");
    w
}

fn assets() -> WhisperAssets {
    let mut mel_filters = BTreeMap::new();
    mel_filters.insert(
        3,
        MelFilters {
            n_mel: 3,
            n_fft: 5,
            data: (0..15).map(|i| i as f32 / 10.0).collect(),
        },
    );
    WhisperAssets {
        mel_filters,
        gpt2: (0..10).map(|i| format!("t{i}").into_bytes()).collect(),
        multilingual: Vec::new(),
    }
}

fn convert_bytes(model: Vec<u8>) -> Result<Vec<u8>, WhisperError> {
    convert_with(model, Weights::F16)
}

fn convert_with(model: Vec<u8>, weights: Weights) -> Result<Vec<u8>, WhisperError> {
    let model = Ct2Model::parse(model).unwrap();
    let mut out = Vec::new();
    let mut written = 0u64;
    convert(&model, &assets(), weights, &mut out, &mut |n| written += n)?;
    assert_eq!(written, out.len() as u64, "progress counts every byte");
    Ok(out)
}

fn tensor<'s>(summary: &'s GgmlSummary, name: &str) -> &'s GgmlTensor {
    summary
        .tensors
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no tensor {name}"))
}

/// The f32 values of tensor `name` (f16 data widened, Q8_0 dequantised).
fn values(bytes: &[u8], summary: &GgmlSummary, name: &str) -> Vec<f32> {
    let t = tensor(summary, name);
    let n: usize = t.dims.iter().product();
    let data = &bytes[t.offset..];
    if t.ttype == q8_0::GGML_TYPE {
        q8_0::dequantize(&data[..n / q8_0::BLOCK * q8_0::BLOCK_BYTES])
    } else if t.ttype == 0 {
        data.chunks_exact(4)
            .take(n)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    } else {
        data.chunks_exact(2)
            .take(n)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect()
    }
}

/// Every tensor name whisper.cpp expects for one encoder and one decoder layer.
fn expected_names() -> BTreeSet<String> {
    let mut names: BTreeSet<String> = [
        "encoder.positional_embedding",
        "encoder.conv1.weight",
        "encoder.conv1.bias",
        "encoder.conv2.weight",
        "encoder.conv2.bias",
        "encoder.ln_post.weight",
        "encoder.ln_post.bias",
        "decoder.positional_embedding",
        "decoder.token_embedding.weight",
        "decoder.ln.weight",
        "decoder.ln.bias",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let block = [
        "mlp_ln.weight",
        "mlp_ln.bias",
        "mlp.0.weight",
        "mlp.0.bias",
        "mlp.2.weight",
        "mlp.2.bias",
        "attn_ln.weight",
        "attn_ln.bias",
        "attn.query.weight",
        "attn.query.bias",
        "attn.key.weight",
        "attn.value.weight",
        "attn.value.bias",
        "attn.out.weight",
        "attn.out.bias",
    ];
    for side in ["encoder", "decoder"] {
        names.extend(block.iter().map(|t| format!("{side}.blocks.0.{t}")));
    }
    for t in [
        "cross_attn_ln.weight",
        "cross_attn_ln.bias",
        "cross_attn.query.weight",
        "cross_attn.query.bias",
        "cross_attn.key.weight",
        "cross_attn.value.weight",
        "cross_attn.value.bias",
        "cross_attn.out.weight",
        "cross_attn.out.bias",
    ] {
        names.insert(format!("decoder.blocks.0.{t}"));
    }
    names
}

#[test]
fn header_hparams_filters_and_vocab() {
    let bytes = convert_bytes(synthetic().finish("WhisperSpec")).unwrap();
    let s = read_ggml(&bytes).unwrap();
    assert_eq!(
        s.hparams,
        Hparams {
            n_vocab: 10,
            n_audio_ctx: 6,
            n_audio_state: 4,
            n_audio_head: 2,
            n_audio_layer: 1,
            n_text_ctx: 5,
            n_text_state: 4,
            n_text_head: 2,
            n_text_layer: 1,
            n_mels: 3,
        }
    );
    assert_eq!(s.ftype, 1);
    assert_eq!(s.mel, (3, 5));
    assert_eq!(s.vocab, assets().gpt2);
}

#[test]
fn names_are_mapped_to_whisper_cpp() {
    let bytes = convert_bytes(synthetic().finish("WhisperSpec")).unwrap();
    let s = read_ggml(&bytes).unwrap();
    let names: BTreeSet<String> = s.tensors.iter().map(|t| t.name.clone()).collect();
    assert_eq!(s.tensors.len(), names.len(), "no tensor written twice");
    assert_eq!(names, expected_names());
}

#[test]
fn dims_are_innermost_first_and_types_follow_whisper_cpp() {
    let bytes = convert_bytes(synthetic().finish("WhisperSpec")).unwrap();
    let s = read_ggml(&bytes).unwrap();
    let check = |name: &str, dims: &[usize], ttype: i32| {
        let t = tensor(&s, name);
        assert_eq!((t.dims.as_slice(), t.ttype), (dims, ttype), "{name}");
    };
    check("encoder.conv1.weight", &[3, 3, 4], 1);
    check("encoder.conv1.bias", &[1, 4], 0);
    check("encoder.positional_embedding", &[4, 6], 0);
    check("decoder.positional_embedding", &[4, 5], 0);
    check("decoder.token_embedding.weight", &[4, 10], 1);
    check("encoder.blocks.0.mlp.0.weight", &[4, 16], 1);
    check("encoder.blocks.0.mlp.2.weight", &[16, 4], 1);
    check("encoder.blocks.0.attn.query.weight", &[4, 4], 1);
    check("encoder.blocks.0.attn.query.bias", &[4], 0);
    check("decoder.blocks.0.cross_attn_ln.weight", &[4], 0);
}

#[test]
fn fused_qkv_is_split_in_row_blocks() {
    let bytes = convert_bytes(synthetic().finish("WhisperSpec")).unwrap();
    let s = read_ggml(&bytes).unwrap();
    let rows = |from: usize| {
        (from * STATE..(from + 4) * STATE)
            .map(|i| i as f32)
            .collect()
    };
    let q: Vec<f32> = rows(0);
    let k: Vec<f32> = rows(4);
    let v: Vec<f32> = rows(8);
    for side in ["encoder", "decoder"] {
        let b = format!("{side}.blocks.0.attn");
        assert_eq!(values(&bytes, &s, &format!("{b}.query.weight")), q);
        assert_eq!(values(&bytes, &s, &format!("{b}.key.weight")), k);
        assert_eq!(values(&bytes, &s, &format!("{b}.value.weight")), v);
        assert_eq!(
            values(&bytes, &s, &format!("{b}.query.bias")),
            [1., 2., 3., 4.]
        );
        assert_eq!(
            values(&bytes, &s, &format!("{b}.value.bias")),
            [9., 10., 11., 12.]
        );
    }
    // Cross attention: linear_1 is fused K,V; the value half keeps its bias.
    let b = "decoder.blocks.0.cross_attn";
    assert_eq!(values(&bytes, &s, &format!("{b}.key.weight")), rows(0));
    assert_eq!(values(&bytes, &s, &format!("{b}.value.weight")), rows(4));
    assert_eq!(
        values(&bytes, &s, &format!("{b}.value.bias")),
        [5., 6., 7., 8.]
    );
}

#[test]
fn nonzero_key_bias_is_refused() {
    let mut w = synthetic();
    fused_bias(&mut w, "encoder/layer_0/self_attention/linear_0/bias", 3, 9);
    // The later duplicate replaces the first when parsed.
    let err = convert_bytes(w.finish("WhisperSpec")).unwrap_err();
    assert!(matches!(err, WhisperError::KeyBias(..)), "{err}");
}

#[test]
fn unknown_tensors_and_wrong_specs_are_refused() {
    let mut w = synthetic();
    ramp(&mut w, "decoder/extra/weight", &[2, 2]);
    let err = convert_bytes(w.finish("WhisperSpec")).unwrap_err();
    assert!(err.to_string().contains("decoder/extra/weight"), "{err}");

    let err = convert_bytes(synthetic().finish("TransformerSpec")).unwrap_err();
    assert!(matches!(err, WhisperError::Spec(_)), "{err}");

    let mut w = Ct2Writer::default();
    ramp(&mut w, "decoder/embeddings/weight", &[10, STATE]);
    let err = convert_bytes(w.finish("WhisperSpec")).unwrap_err();
    assert!(
        err.to_string().contains("encoder/position_encodings"),
        "{err}"
    );
}

#[test]
fn npy_and_tiktoken_parsers() {
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    npy.extend_from_slice(&(header.len() as u16).to_le_bytes());
    npy.extend_from_slice(header.as_bytes());
    for i in 0..6 {
        npy.extend_from_slice(&(i as f32).to_le_bytes());
    }
    let (shape, data) = parse_npy_f32(&npy).unwrap();
    assert_eq!(shape, vec![2, 3]);
    assert_eq!(data, vec![0., 1., 2., 3., 4., 5.]);
    assert!(parse_npy_f32(&npy[..npy.len() - 1]).is_err());

    let tokens = parse_tiktoken("IQ== 0\nIg== 1\n= 2\n").unwrap();
    assert_eq!(tokens, vec![b"!".to_vec(), b"\"".to_vec(), Vec::new()]);
    let err = parse_tiktoken("IQ== 0\nIg== 5\n").unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
}

#[test]
fn q8_0_quantises_the_matrices_whisper_cpp_quantises() {
    let model = synthetic_sized(32).finish("WhisperSpec");
    let f16_bytes = convert_with(model.clone(), Weights::F16).unwrap();
    let bytes = convert_with(model, Weights::Q8_0).unwrap();
    let (plain, s) = (read_ggml(&f16_bytes).unwrap(), read_ggml(&bytes).unwrap());
    assert_eq!(
        s.ftype, 2007,
        "quantisation version 2, GGML_FTYPE_MOSTLY_Q8_0"
    );
    assert_eq!(s.hparams, plain.hparams);
    assert_eq!(s.vocab, plain.vocab);
    let names = |s: &GgmlSummary| s.tensors.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&s), names(&plain), "same tensors in the same order");

    for (t, p) in s.tensors.iter().zip(&plain.tensors) {
        assert_eq!(t.dims, p.dims, "{}", t.name);
        // 2-D f16 matrices become Q8_0: linear weights and the token embedding. Conv
        // kernels (3-D) stay f16; conv biases, positional embeddings, norms, biases f32.
        let expected = if p.ttype == 1 && p.dims.len() == 2 {
            q8_0::GGML_TYPE
        } else {
            p.ttype
        };
        assert_eq!(t.ttype, expected, "{}", t.name);
        let (q, exact) = (
            values(&bytes, &s, &t.name),
            values(&f16_bytes, &plain, &p.name),
        );
        if t.ttype != q8_0::GGML_TYPE {
            assert_eq!(q, exact, "{} is copied as it was", t.name);
            continue;
        }
        for (i, (block, restored)) in exact.chunks(32).zip(q.chunks(32)).enumerate() {
            let step = block.iter().fold(0f32, |m, x| m.max(x.abs())) / 127.0;
            for (x, y) in block.iter().zip(restored) {
                assert!(
                    (x - y).abs() <= step * 0.6,
                    "{} block {i}: {x} became {y} (step {step})",
                    t.name
                );
            }
        }
    }
    for name in [
        "decoder.token_embedding.weight",
        "encoder.blocks.0.attn.key.weight",
        "decoder.blocks.0.cross_attn.value.weight",
        "encoder.blocks.0.mlp.2.weight",
    ] {
        assert_eq!(tensor(&s, name).ttype, q8_0::GGML_TYPE, "{name}");
    }
    for (name, ttype) in [
        ("encoder.conv1.weight", 1),
        ("encoder.conv2.bias", 0),
        ("encoder.positional_embedding", 0),
        ("decoder.positional_embedding", 0),
    ] {
        assert_eq!(tensor(&s, name).ttype, ttype, "{name}");
    }
    // A Q8_0 matrix takes 34 bytes per 32 values.
    let t = tensor(&s, "encoder.blocks.0.mlp.0.weight");
    assert_eq!(t.dims, [32, 128]);
    let next = s
        .tensors
        .iter()
        .map(|u| u.offset)
        .filter(|&o| o > t.offset)
        .min();
    let header = 4 * 4 + "encoder.blocks.0.mlp.0.bias".len();
    assert_eq!(next.unwrap() - t.offset, 128 * 34 + header);
}

#[test]
fn rows_that_are_not_whole_blocks_are_refused_for_q8_0() {
    let err = convert_with(synthetic().finish("WhisperSpec"), Weights::Q8_0).unwrap_err();
    assert!(matches!(err, WhisperError::Q8Row { row: 4, .. }), "{err}");
    assert!(err.to_string().contains("multiple of 32"), "{err}");
}
