//! Annotated Cranelift IR for `optc emit --clif`: each group of instructions is preceded by the
//! step IR node it computes, and each run of nodes by the `.opt` statement they come from, as
//! rustc_codegen_cranelift's `CommentWriter` does.
//!
//! ```text
//!     ; stdlib/adam.opt:61: mu = update_moment(g, mu, b1, 1)
//!     ; %8 = add %5, %7 : per-element f32
//!     v61 = fadd v57, v60
//! ```

use std::collections::HashMap;
use std::fmt::{self, Write};

use cranelift_codegen::entity::{EntityRef, SecondaryMap};
use cranelift_codegen::ir::{Block, Function, Inst, SourceLoc, Value};
use cranelift_codegen::write::{FuncWriter, PlainWriter, decorate_function};

use super::lower::Fx;
use crate::source::{SourceMap, Span};

/// Comments on instructions, by the number of instructions made before them.
pub struct Comments<'s> {
    at: Vec<(usize, String)>,
    /// The sources the step IR came from, to quote the `.opt` statement of each node.
    sources: Option<&'s SourceMap>,
    /// The statement quoted last: a run of nodes from one statement quotes it once.
    quoted: Option<Span>,
    /// The statements given a source location, by location: the machine code's listing
    /// quotes them.
    locs: Vec<Span>,
}

impl<'s> Comments<'s> {
    /// Comments that quote the `.opt` statements of `sources` (if given) above their nodes.
    pub fn new(sources: Option<&'s SourceMap>) -> Comments<'s> {
        Comments { at: Vec::new(), sources, quoted: None, locs: Vec::new() }
    }

    /// The source location of instructions made for a node from the statement at `origin`.
    pub fn srcloc(&mut self, origin: Option<Span>) -> SourceLoc {
        let Some(span) = origin.filter(|_| self.sources.is_some()) else { return SourceLoc::default() };
        let index = self.locs.iter().position(|&s| s == span).unwrap_or_else(|| {
            self.locs.push(span);
            self.locs.len() - 1
        });
        SourceLoc::new(u32::try_from(index).unwrap_or(u32::MAX))
    }

    /// The statement of each source location handed out, by location, quoted
    /// (`file:line: text`).
    pub fn quotes(&self) -> Vec<Option<String>> {
        self.locs.iter().map(|&span| self.sources.and_then(|s| quote(s, span))).collect()
    }

    /// Quotes the statement at `origin` on the first instruction made since `mark`, unless it
    /// was the last one quoted: `; stdlib/adam.opt:61: mu = update_moment(g, mu, b1, 1)`.
    pub fn quote(&mut self, fx: &Fx, mark: usize, origin: Option<Span>) {
        let (Some(sources), Some(span)) = (self.sources, origin) else { return };
        if self.quoted == Some(span) || fx.bcx.func.dfg.num_insts() <= mark {
            return;
        }
        if let Some(text) = quote(sources, span) {
            self.at.push((mark, text));
            self.quoted = Some(span);
        }
    }

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

    /// A comment on the next instruction `fx` makes; the next node quotes its statement again.
    pub fn note(&mut self, fx: &Fx, text: String) {
        let mark = self.mark(fx);
        self.at.push((mark, text));
        self.quoted = None;
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

/// The first line of the statement at `span`, with where it is: `file:line: text`.
fn quote(sources: &SourceMap, span: Span) -> Option<String> {
    let file = sources.get(span.file)?;
    let line = file.line_index(span.start as usize) + 1;
    let text = sources.slice(span).trim_end();
    let more = if text.contains('\n') { " ..." } else { "" };
    Some(format!("{}:{line}: {}{more}", file.name, text.lines().next().unwrap_or("").trim()))
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
