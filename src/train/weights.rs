//! Parameters in safetensors files, so weights come from and go to PyTorch or JAX: one float32
//! tensor per leaf, under the leaf's dotted name.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::ir::Layout;

/// Writes `params` (in `layout` order) to `path`, through [`crate::fsio`].
pub fn save(path: &Path, layout: &Layout, params: &[f32], metadata: HashMap<String, String>) -> Result<(), String> {
    let data = serialize(layout, params, metadata)?;
    crate::fsio::write(path, &data).map_err(|e| e.to_string())
}

/// `params` (in `layout` order) as the bytes of a safetensors file.
pub fn serialize(layout: &Layout, params: &[f32], metadata: HashMap<String, String>) -> Result<Vec<u8>, String> {
    let bytes: Vec<u8> = params.iter().flat_map(|p| p.to_le_bytes()).collect();
    let mut views = Vec::new();
    let mut offset = 0;
    for leaf in &layout.leaves {
        let len = leaf.len() * 4;
        let view = TensorView::new(Dtype::F32, leaf.shape.clone(), &bytes[offset..offset + len])
            .map_err(|e| format!("cannot serialize the weights: {e}"))?;
        views.push((leaf.name.clone(), view));
        offset += len;
    }
    safetensors::serialize(views, Some(metadata)).map_err(|e| format!("cannot serialize the weights: {e}"))
}

/// Reads parameters for `layout` from `path`: every leaf must be there, float32 (or float64 /
/// float16 / bfloat16, converted), with its shape; extra tensors are an error too, since they
/// mean the file is for another model.
pub fn load(path: &Path, layout: &Layout) -> Result<Vec<f32>, String> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("`{name}`: no such file"),
        _ => format!("cannot read `{name}`: {e}"),
    })?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| format!("`{name}` is not a safetensors file: {e}"))?;
    if let Some(twice) = repeated_name(&bytes) {
        return Err(format!("`{name}` is damaged: its header names the tensor `{twice}` twice"));
    }
    let mut params = Vec::with_capacity(layout.total());
    for leaf in &layout.leaves {
        let tensor = file.tensor(&leaf.name).map_err(|_| {
            let mut names: Vec<&str> = file.names();
            names.sort_unstable();
            format!("`{name}` has no tensor `{}` (it holds {})", leaf.name, names.join(", "))
        })?;
        if tensor.shape() != leaf.shape.as_slice() {
            return Err(format!(
                "`{name}`: `{}` has shape {:?}, but the model's is {:?}",
                leaf.name,
                tensor.shape(),
                leaf.shape
            ));
        }
        let data = tensor.data();
        match tensor.dtype() {
            Dtype::F32 => params.extend(data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
            Dtype::F64 => params.extend(
                data.chunks_exact(8)
                    .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32),
            ),
            Dtype::BF16 => params.extend(data.chunks_exact(2).map(|c| f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16))),
            Dtype::F16 => params.extend(data.chunks_exact(2).map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))),
            other => return Err(format!("`{name}`: `{}` is {other:?}; weights must be floats", leaf.name)),
        }
    }
    let extra: Vec<&str> = file.names().into_iter().filter(|n| !layout.leaves.iter().any(|l| l.name == *n)).collect();
    if !extra.is_empty() {
        return Err(format!("`{name}` holds tensors the model does not have: {}", extra.join(", ")));
    }
    if let Some(i) = params.iter().position(|p| !p.is_finite()) {
        return Err(format!("`{name}` holds a non-finite weight (element {i} of the flattened parameters)"));
    }
    Ok(params)
}

/// A tensor name that a safetensors header holds twice (the parser keeps one of the two).
fn repeated_name(bytes: &[u8]) -> Option<String> {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<String>, A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                if !seen.insert(key.clone()) {
                    return Ok(Some(key));
                }
            }
            Ok(None)
        }
    }
    let len = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let header = bytes.get(8..8usize.checked_add(len)?)?;
    serde_json::Deserializer::from_slice(header).deserialize_map(Keys).ok().flatten()
}

/// IEEE half precision to single.
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: normalise.
            let shift = frac.leading_zeros() - 21;
            sign | ((113 - shift) << 23) | ((frac << (shift + 1)) & 0x3ff) << 13
        }
        (31, _) => sign | 0x7f80_0000 | (frac << 13),
        _ => sign | ((exp + 112) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_converts_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
    }
}
