//! Tests of the format reader on files written here by a minimal writer, which the mapping's
//! tests share.

use half::{bf16, f16};

use super::*;

/// Writes GGUF images: metadata values as given, tensors laid out at aligned offsets.
pub(crate) struct GgufWriter {
    pub(crate) version: u32,
    pub(crate) alignment: usize,
    pub(crate) metadata: Vec<(String, MetadataValue)>,
    pub(crate) tensors: Vec<(String, Vec<u64>, GgmlType, Vec<u8>)>,
}

impl GgufWriter {
    pub(crate) fn new() -> Self {
        Self {
            version: 3,
            alignment: 32,
            metadata: Vec::new(),
            tensors: Vec::new(),
        }
    }

    pub(crate) fn kv(mut self, key: &str, value: MetadataValue) -> Self {
        self.metadata.push((key.into(), value));
        self
    }

    pub(crate) fn tensor(
        mut self,
        name: &str,
        ggml_dims: &[u64],
        ty: GgmlType,
        data: Vec<u8>,
    ) -> Self {
        self.tensors
            .push((name.into(), ggml_dims.to_vec(), ty, data));
        self
    }

    fn type_id(value: &MetadataValue) -> u32 {
        match value {
            MetadataValue::U8(_) => 0,
            MetadataValue::I8(_) => 1,
            MetadataValue::U16(_) => 2,
            MetadataValue::I16(_) => 3,
            MetadataValue::U32(_) => 4,
            MetadataValue::I32(_) => 5,
            MetadataValue::F32(_) => 6,
            MetadataValue::Bool(_) => 7,
            MetadataValue::String(_) => 8,
            MetadataValue::Array(_) => 9,
            MetadataValue::U64(_) => 10,
            MetadataValue::I64(_) => 11,
            MetadataValue::F64(_) => 12,
        }
    }

    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s.as_bytes());
    }

    fn value(out: &mut Vec<u8>, value: &MetadataValue) {
        match value {
            MetadataValue::U8(v) => out.extend(v.to_le_bytes()),
            MetadataValue::I8(v) => out.extend(v.to_le_bytes()),
            MetadataValue::U16(v) => out.extend(v.to_le_bytes()),
            MetadataValue::I16(v) => out.extend(v.to_le_bytes()),
            MetadataValue::U32(v) => out.extend(v.to_le_bytes()),
            MetadataValue::I32(v) => out.extend(v.to_le_bytes()),
            MetadataValue::F32(v) => out.extend(v.to_le_bytes()),
            MetadataValue::Bool(v) => out.push(u8::from(*v)),
            MetadataValue::String(s) => Self::string(out, s),
            MetadataValue::Array(items) => {
                out.extend(items.first().map_or(0, Self::type_id).to_le_bytes());
                out.extend((items.len() as u64).to_le_bytes());
                items.iter().for_each(|item| Self::value(out, item));
            }
            MetadataValue::U64(v) => out.extend(v.to_le_bytes()),
            MetadataValue::I64(v) => out.extend(v.to_le_bytes()),
            MetadataValue::F64(v) => out.extend(v.to_le_bytes()),
        }
    }

    pub(crate) fn build(&self) -> Vec<u8> {
        let pad = |out: &mut Vec<u8>| out.resize(out.len().next_multiple_of(self.alignment), 0);
        let mut out = b"GGUF".to_vec();
        out.extend(self.version.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend((self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            Self::string(&mut out, key);
            out.extend(Self::type_id(value).to_le_bytes());
            Self::value(&mut out, value);
        }
        let mut offset = 0usize;
        for (name, dims, ty, data) in &self.tensors {
            Self::string(&mut out, name);
            out.extend((dims.len() as u32).to_le_bytes());
            dims.iter().for_each(|d| out.extend(d.to_le_bytes()));
            out.extend(ty.id().to_le_bytes());
            out.extend((offset as u64).to_le_bytes());
            offset = (offset + data.len()).next_multiple_of(self.alignment);
        }
        pad(&mut out);
        for (_, _, _, data) in &self.tensors {
            out.extend(data);
            pad(&mut out);
        }
        out
    }
}

pub(crate) fn string(s: &str) -> MetadataValue {
    MetadataValue::String(s.into())
}

pub(crate) fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub(crate) fn half(x: f32) -> [u8; 2] {
    f16::from_f32(x).to_le_bytes()
}

/// One block of each quantized type holding `value` everywhere (`value` a small integer).
pub(crate) fn constant_block(ty: GgmlType, value: i32) -> Vec<u8> {
    let mut block = Vec::new();
    match ty {
        GgmlType::Q8_0 => {
            block.extend(half(1.0));
            block.extend([value as i8 as u8; 32]);
        }
        GgmlType::Q4_0 => {
            let q = (value + 8) as u8;
            block.extend(half(1.0));
            block.extend([q | (q << 4); 16]);
        }
        GgmlType::Q4_1 => {
            // value = q * 1 + m with m = -8
            let q = (value + 8) as u8;
            block.extend(half(1.0));
            block.extend(half(-8.0));
            block.extend([q | (q << 4); 16]);
        }
        GgmlType::Q5_0 => {
            let q = (value + 16) as u32;
            let qh: u32 = if q & 16 != 0 { u32::MAX } else { 0 };
            let low = (q & 15) as u8;
            block.extend(half(1.0));
            block.extend(qh.to_le_bytes());
            block.extend([low | (low << 4); 16]);
        }
        GgmlType::Q4K => {
            // d = 1, dmin = 8, every scale and min 1: value = q - 8
            let q = (value + 8) as u8;
            block.extend(half(1.0));
            block.extend(half(8.0));
            block.extend([1, 1, 1, 1, 1, 1, 1, 1, 0x11, 0x11, 0x11, 0x11]);
            block.extend([q | (q << 4); 128]);
        }
        GgmlType::Q6K => {
            let q = (value + 32) as u8;
            let (low, high) = (q & 15, q >> 4);
            block.extend([low | (low << 4); 128]);
            block.extend([high | (high << 2) | (high << 4) | (high << 6); 64]);
            block.extend([1u8; 16]);
            block.extend(half(1.0));
        }
        _ => unreachable!("constant_block is written for quantized types"),
    }
    block
}

#[test]
fn every_dtype_dequantizes_in_pytorch_order() {
    let plain = [1.0f32, -2.0, 0.5, 4.0, -0.25, 8.0];
    let mut writer = GgufWriter::new()
        .kv("general.architecture", string("test"))
        .tensor("f32", &[3, 2], GgmlType::F32, f32_bytes(&plain))
        .tensor(
            "f16",
            &[3, 2],
            GgmlType::F16,
            plain.iter().flat_map(|&x| half(x)).collect(),
        )
        .tensor(
            "bf16",
            &[3, 2],
            GgmlType::BF16,
            plain
                .iter()
                .flat_map(|&x| bf16::from_f32(x).to_le_bytes())
                .collect(),
        );
    let quantized = [
        GgmlType::Q8_0,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q4K,
        GgmlType::Q6K,
    ];
    for ty in quantized {
        // two rows (ggml dim 1) of one block each, holding 3 and -5
        let mut data = constant_block(ty, 3);
        data.extend(constant_block(ty, -5));
        writer = writer.tensor(ty.name(), &[ty.block_len() as u64, 2], ty, data);
    }
    let file = GgufFile::from_bytes(writer.build(), "dtypes.gguf").unwrap();
    let read = |name: &str| {
        let info = file.tensor_info(name).unwrap();
        (info.shape(), file.read(info).unwrap())
    };
    for name in ["f32", "f16", "bf16"] {
        let (shape, data) = read(name);
        assert_eq!(shape, [2, 3], "{name}");
        assert_eq!(data, plain, "{name}");
    }
    for ty in quantized {
        let (shape, data) = read(ty.name());
        let n = ty.block_len();
        assert_eq!(shape, [2, n], "{}", ty.name());
        assert!(
            data[..n].iter().all(|&x| x == 3.0),
            "{}: {:?}",
            ty.name(),
            &data[..n]
        );
        assert!(
            data[n..].iter().all(|&x| x == -5.0),
            "{}: {:?}",
            ty.name(),
            &data[n..]
        );
    }
}

#[test]
fn metadata_values_of_every_type_and_version_2() {
    let values = [
        MetadataValue::U8(200),
        MetadataValue::I8(-3),
        MetadataValue::U16(60_000),
        MetadataValue::I16(-30_000),
        MetadataValue::U32(4_000_000_000),
        MetadataValue::I32(-2_000_000_000),
        MetadataValue::F32(0.1),
        MetadataValue::Bool(true),
        string("héllo"),
        MetadataValue::Array(vec![MetadataValue::Array(vec![MetadataValue::U8(1)])]),
        MetadataValue::U64(u64::MAX),
        MetadataValue::I64(i64::MIN),
        MetadataValue::F64(-1e300),
    ];
    let mut writer = GgufWriter::new();
    writer.version = 2;
    for (i, value) in values.iter().enumerate() {
        writer = writer.kv(&format!("k{i:02}"), value.clone());
    }
    let file = GgufFile::from_bytes(writer.build(), "v2.gguf").unwrap();
    assert_eq!(file.version(), 2);
    let read: Vec<_> = file.metadata().values().cloned().collect();
    assert_eq!(read, values);
    assert_eq!(file.metadata_value("k06").unwrap().as_f64(), Some(0.1));
    assert!(file.tensor_infos().is_empty());
    assert_eq!(file.architecture(), "");
}

/// Parses `bytes` and returns the error text; panics if parsing succeeds.
fn parse_error(bytes: Vec<u8>) -> String {
    match GgufFile::from_bytes(bytes, "bad.gguf") {
        Ok(file) => panic!("parsed: {file:?}"),
        Err(e) => e.to_string(),
    }
}

fn small_file() -> GgufWriter {
    GgufWriter::new()
        .kv("general.architecture", string("test"))
        .tensor(
            "t",
            &[32, 2],
            GgmlType::Q8_0,
            [
                constant_block(GgmlType::Q8_0, 1),
                constant_block(GgmlType::Q8_0, 2),
            ]
            .concat(),
        )
}

#[test]
fn malformed_headers_name_the_field() {
    let good = small_file().build();
    let mut bad_magic = good.clone();
    bad_magic[0] = b'X';
    assert!(parse_error(bad_magic).contains("magic"));
    let mut v1 = good.clone();
    v1[4] = 1;
    assert!(parse_error(v1).contains("version 1"));
    let mut many_tensors = good.clone();
    many_tensors[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(parse_error(many_tensors).contains("tensor_count"));
    let mut many_kvs = good.clone();
    many_kvs[16..24].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(parse_error(many_kvs).contains("metadata_kv_count"));
    let mut long_key = good.clone();
    long_key[24..32].copy_from_slice(&(1u64 << 50).to_le_bytes());
    assert!(parse_error(long_key).contains("metadata[0].key"));
    // the data ends 28 bytes of padding before the end of the file
    assert!(parse_error(good[..good.len() - 32].to_vec()).contains("past the end of the file"));
    assert!(parse_error(good[..30].to_vec()).contains("tensor_count"));
    // header (24), key length and "general.architecture" (28), half the value type
    let err = parse_error(good[..54].to_vec());
    assert!(
        err.contains("metadata \"general.architecture\" type") && err.contains("truncated"),
        "{err}"
    );
}

#[test]
fn malformed_tensor_infos_name_the_tensor() {
    let with = |dims: &[u64], ty: GgmlType, data: Vec<u8>| {
        GgufWriter::new().tensor("w", dims, ty, data).build()
    };
    assert!(parse_error(with(&[1, 1, 1, 1, 1], GgmlType::F32, vec![0; 4])).contains("5 dims"));
    assert!(parse_error(with(&[u64::MAX, 4], GgmlType::F32, vec![0; 4])).contains("overflows"));
    assert!(parse_error(with(&[1 << 62], GgmlType::F32, vec![0; 4])).contains("past the end"));
    assert!(parse_error(with(&[16], GgmlType::Q4_0, vec![0; 18])).contains("block length"));

    let good = GgufWriter::new()
        .tensor("w", &[1], GgmlType::F32, vec![0; 4])
        .build();
    // the info is: name (8 + 1), n_dims (4), dims (8), type (4), offset (8)
    let info = 24;
    let type_at = info + 9 + 4 + 8;
    let mut unknown_type = good.clone();
    unknown_type[type_at..type_at + 4].copy_from_slice(&99u32.to_le_bytes());
    let err = parse_error(unknown_type);
    assert!(
        err.contains("tensor \"w\" type") && err.contains("99"),
        "{err}"
    );
    let mut misaligned = good.clone();
    misaligned[type_at + 4..type_at + 12].copy_from_slice(&4u64.to_le_bytes());
    assert!(parse_error(misaligned).contains("alignment"));

    let duplicate = GgufWriter::new()
        .tensor("w", &[1], GgmlType::F32, vec![0; 4])
        .tensor("w", &[1], GgmlType::F32, vec![0; 4])
        .build();
    assert!(parse_error(duplicate).contains("twice"));
    let odd_alignment = GgufWriter::new()
        .kv("general.alignment", MetadataValue::U32(3))
        .build();
    assert!(parse_error(odd_alignment).contains("general.alignment"));
}

#[test]
fn malformed_values_name_the_key() {
    let bad_bool = GgufWriter::new()
        .kv("flag", MetadataValue::Bool(true))
        .build();
    let mut bad = bad_bool.clone();
    // header (24), key length and "flag" (12), type (4)
    bad[40] = 2;
    assert!(parse_error(bad).contains("metadata \"flag\""));
    let mut unknown = bad_bool.clone();
    let type_at = 24 + 8 + 4;
    unknown[type_at..type_at + 4].copy_from_slice(&13u32.to_le_bytes());
    assert!(parse_error(unknown).contains("unknown value type 13"));

    let array = GgufWriter::new()
        .kv("xs", MetadataValue::Array(vec![MetadataValue::U32(1)]))
        .build();
    let count_at = 24 + 8 + 2 + 4 + 4;
    let mut huge = array.clone();
    huge[count_at..count_at + 8].copy_from_slice(&(1u64 << 61).to_le_bytes());
    assert!(parse_error(huge).contains("metadata \"xs\" array length"));

    let mut nested = MetadataValue::U8(0);
    for _ in 0..6 {
        nested = MetadataValue::Array(vec![nested]);
    }
    assert!(parse_error(GgufWriter::new().kv("deep", nested).build()).contains("nested"));

    let utf8 = GgufWriter::new().kv("s", string("ab")).build();
    let mut broken = utf8.clone();
    // header (24), key length and "s" (9), type (4), string length (8), "a"
    broken[46] = 0xFF;
    assert!(parse_error(broken).contains("UTF-8"));
}

#[test]
fn unsupported_dtypes_are_read_errors() {
    let bytes = GgufWriter::new()
        .tensor("k5", &[256], GgmlType::Q5K, vec![0; 176])
        .build();
    let file = GgufFile::from_bytes(bytes, "q5k.gguf").unwrap();
    let err = file
        .read(file.tensor_info("k5").unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("q5k.gguf") && err.contains("k5") && err.contains("Q5_K"),
        "{err}"
    );
    assert!(file.tensor_info("nope").is_none());
}
