//! Just enough of a BTF reader to learn the layout clang gave the ABI
//! structs and enums: names, sizes, member offsets, enumerator values. The
//! ABI drift test compares them with the Rust mirrors. aya-obj parses BTF
//! too but keeps member offsets private.

use std::collections::HashMap;

use object::{Object, ObjectSection};

const BTF_MAGIC: u16 = 0xeb9f;
const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_ENUM64: u32 = 19;

#[derive(Debug)]
pub struct StructLayout {
    pub size: usize,
    /// (member name, byte offset), in declaration order.
    pub members: Vec<(String, usize)>,
}

#[derive(Debug, Default)]
pub struct StructLayouts {
    structs: HashMap<String, StructLayout>,
    enums: HashMap<String, Vec<(String, i64)>>,
}

impl StructLayouts {
    pub fn get(&self, name: &str) -> Option<&StructLayout> {
        self.structs.get(name)
    }

    pub fn enum_values(&self, name: &str) -> Option<&[(String, i64)]> {
        self.enums.get(name).map(Vec::as_slice)
    }

    /// Reads the `.BTF` section of an ELF object.
    pub fn from_object(elf: &[u8]) -> Result<StructLayouts, String> {
        let file = object::File::parse(elf).map_err(|e| format!("not an ELF object: {e}"))?;
        let section = file
            .section_by_name(".BTF")
            .ok_or("the object has no .BTF section (built without -g?)")?;
        let data = section.data().map_err(|e| format!("reading .BTF: {e}"))?;
        StructLayouts::parse(data)
    }

    fn parse(btf: &[u8]) -> Result<StructLayouts, String> {
        let u16_at = |at: usize| -> Result<u16, String> {
            btf.get(at..at + 2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
                .ok_or_else(|| format!("BTF truncated at {at}"))
        };
        let u32_at = |at: usize| -> Result<u32, String> {
            btf.get(at..at + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| format!("BTF truncated at {at}"))
        };
        if u16_at(0)? != BTF_MAGIC {
            return Err("bad BTF magic (only little-endian objects are supported)".into());
        }
        let hdr_len = u32_at(4)? as usize;
        let type_start = hdr_len + u32_at(8)? as usize;
        let type_end = type_start + u32_at(12)? as usize;
        let str_start = hdr_len + u32_at(16)? as usize;
        let str_end = str_start + u32_at(20)? as usize;
        let strings = btf
            .get(str_start..str_end)
            .ok_or("BTF string section out of bounds")?;
        let name = |off: u32| -> String {
            let rest = strings.get(off as usize..).unwrap_or_default();
            let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            String::from_utf8_lossy(&rest[..end]).into_owned()
        };

        let mut layouts = StructLayouts::default();
        let mut at = type_start;
        while at < type_end {
            let name_off = u32_at(at)?;
            let info = u32_at(at + 4)?;
            let size_or_type = u32_at(at + 8)?;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let kind_flag = info >> 31 == 1;
            at += 12;
            match kind {
                KIND_STRUCT | KIND_UNION => {
                    let mut members = Vec::with_capacity(vlen);
                    for i in 0..vlen {
                        let m = at + i * 12;
                        let raw_offset = u32_at(m + 8)?;
                        // With kind_flag the low 24 bits are the bit offset.
                        let bits = if kind_flag {
                            raw_offset & 0x00ff_ffff
                        } else {
                            raw_offset
                        };
                        members.push((name(u32_at(m)?), (bits / 8) as usize));
                    }
                    at += vlen * 12;
                    if kind == KIND_STRUCT && name_off != 0 {
                        layouts.structs.insert(
                            name(name_off),
                            StructLayout {
                                size: size_or_type as usize,
                                members,
                            },
                        );
                    }
                }
                KIND_ENUM => {
                    let mut values = Vec::with_capacity(vlen);
                    for i in 0..vlen {
                        let e = at + i * 8;
                        values.push((name(u32_at(e)?), i64::from(u32_at(e + 4)? as i32)));
                    }
                    at += vlen * 8;
                    if name_off != 0 {
                        layouts.enums.insert(name(name_off), values);
                    }
                }
                KIND_ENUM64 => at += vlen * 12,
                KIND_INT | KIND_VAR | KIND_DECL_TAG => at += 4,
                KIND_ARRAY => at += 12,
                KIND_FUNC_PROTO => at += vlen * 8,
                KIND_DATASEC => at += vlen * 12,
                // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT,
                // TYPE_TAG carry nothing after the common header.
                _ => {}
            }
        }
        Ok(layouts)
    }
}
