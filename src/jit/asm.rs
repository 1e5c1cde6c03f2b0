//! The machine code of a kernel for `optc emit --asm`, disassembled by iced-x86, with each run
//! of instructions under the `.opt` line it comes from. The kernel's instructions carry source
//! locations (an index into the statements quoted); Cranelift reports the code range of each.
//! On a host other than x86-64 the listing is Cranelift's own disassembly, without them.

use cranelift_codegen::ir::SourceLoc;
use cranelift_codegen::{Final, MachSrcLoc};
use iced_x86::{Decoder, DecoderOptions, Formatter, GasFormatter, Instruction};

/// `code` (a function placed at offset 0) as text, one instruction per line with its offset,
/// and `quote(loc)` above the first instruction of each run with the same source location.
/// `srclocs` are Cranelift's, sorted by offset.
pub fn listing(code: &[u8], srclocs: &[MachSrcLoc<Final>], quote: impl Fn(SourceLoc) -> Option<String>) -> String {
    let mut formatter = GasFormatter::new();
    formatter.options_mut().set_first_operand_char_index(10);
    formatter.options_mut().set_branch_leading_zeros(false);
    let mut decoder = Decoder::with_ip(64, code, 0, DecoderOptions::NONE);
    let mut out = String::new();
    let mut text = String::new();
    let mut instruction = Instruction::default();
    let mut quoted: Option<SourceLoc> = None;
    while decoder.can_decode() {
        decoder.decode_out(&mut instruction);
        let offset = instruction.ip();
        let after = srclocs.partition_point(|s| u64::from(s.start) <= offset);
        let loc = after.checked_sub(1).map(|i| &srclocs[i]).filter(|s| offset < u64::from(s.end)).map(|s| s.loc);
        if loc.is_some_and(|l| !l.is_default()) && loc != quoted {
            quoted = loc;
            if let Some(line) = loc.and_then(&quote) {
                out.push_str(&format!("                ; {line}\n"));
            }
        }
        text.clear();
        formatter.format(&instruction, &mut text);
        out.push_str(&format!("  {offset:5x}:  {text}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_are_listed_with_offsets_and_quoted_by_location() {
        // push %rbp; mov %rsp,%rbp; pop %rbp; ret
        let code = [0x55, 0x48, 0x89, 0xe5, 0x5d, 0xc3];
        let srclocs = [
            MachSrcLoc::<Final> { start: 1, end: 4, loc: SourceLoc::new(7) },
            MachSrcLoc::<Final> { start: 4, end: 6, loc: SourceLoc::new(7) },
        ];
        let text = listing(&code, &srclocs, |loc| Some(format!("statement {}", loc.bits())));
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(lines[0].starts_with("0:") && lines[0].contains("push"), "{text}");
        assert_eq!(lines[1], "; statement 7");
        assert!(lines[2].starts_with("1:") && lines[2].contains("mov"), "{text}");
        assert!(lines[4].starts_with("5:") && lines[4].contains("ret"), "{text}");
    }
}
