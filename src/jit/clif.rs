//! Annotated Cranelift IR for `optc emit --clif`: each group of instructions is preceded by the
//! step IR node it computes, as rustc_codegen_cranelift's `CommentWriter` does.
//!
//! ```text
//!     ; %8 = add %5, %7 : per-element f32
//!     v61 = fadd v57, v60
//! ```

use std::collections::HashMap;
use std::fmt::{self, Write};

use cranelift_codegen::entity::{EntityRef, SecondaryMap};
use cranelift_codegen::ir::{Block, Function, Inst, Value};
use cranelift_codegen::write::{FuncWriter, PlainWriter, decorate_function};

use super::lower::Fx;

/// Comments on instructions, by the number of instructions made before them.
#[derive(Default)]
pub struct Comments {
    at: Vec<(usize, String)>,
}

impl Comments {
    /// The position of the next instruction `fx` makes.
    pub fn mark(&self, fx: &Fx) -> usize {
        fx.bcx.func.dfg.num_insts()
    }

    /// A comment on the first instruction made since `mark`, if any was.
    pub fn attach(&mut self, fx: &Fx, mark: usize, text: String) {
        if fx.bcx.func.dfg.num_insts() > mark {
            self.at.push((mark, text));
        }
    }

    /// A comment on the next instruction `fx` makes.
    pub fn note(&mut self, fx: &Fx, text: String) {
        let mark = self.mark(fx);
        self.at.push((mark, text));
    }

    /// `func` as text, with the comments.
    pub fn write(&self, func: &Function, name: &str) -> String {
        let mut by_inst: HashMap<Inst, Vec<String>> = HashMap::new();
        for (mark, text) in &self.at {
            by_inst.entry(Inst::new(*mark)).or_default().push(text.clone());
        }
        let mut out = format!("; {name}\n");
        let mut writer = Annotated { comments: &by_inst };
        if decorate_function(&mut writer, &mut out, func).is_err() {
            out.push_str("; (the function could not be printed)\n");
        }
        out
    }
}

struct Annotated<'a> {
    comments: &'a HashMap<Inst, Vec<String>>,
}

impl FuncWriter for Annotated<'_> {
    fn write_block_header(&mut self, w: &mut dyn Write, func: &Function, block: Block, indent: usize) -> fmt::Result {
        PlainWriter.write_block_header(w, func, block, indent)
    }

    fn write_instruction(
        &mut self,
        w: &mut dyn Write,
        func: &Function,
        aliases: &SecondaryMap<Value, Vec<Value>>,
        inst: Inst,
        indent: usize,
    ) -> fmt::Result {
        if let Some(texts) = self.comments.get(&inst) {
            for text in texts {
                writeln!(w, "{:indent$}; {text}", "")?;
            }
        }
        PlainWriter.write_instruction(w, func, aliases, inst, indent)
    }
}
