//! Stable text forms of the step IR and of a plan, for `optc emit --ir` and `--plan` and their
//! snapshots.

use std::fmt::Write;

use super::plan::{Plan, Target};
use super::{ConstBits, Graph, Node, NodeId, StepIr};

/// One node as `%id = op args : level kind`.
pub fn node_text(graph: &Graph, id: NodeId) -> String {
    let info = graph.get(id);
    let body = match &info.node {
        Node::Const(c) => match c {
            ConstBits::F32(b) => format!("const {:?}", f32::from_bits(*b)),
            ConstBits::I32(n) => format!("const {n}i"),
            ConstBits::Bool(b) => format!("const {b}"),
        },
        Node::Value => "value".into(),
        Node::Grad => "grad".into(),
        Node::Param => "param".into(),
        Node::LeafNumel => "leaf_numel".into(),
        Node::State(s) => format!("state #{s}"),
        Node::Op(op, args) => {
            let args: Vec<String> = args.iter().map(|a| format!("%{a}")).collect();
            format!("{} {}", op.name(), args.join(", "))
        }
        Node::Reduce { kind, arg, groups } => format!("reduce.{kind:?} %{arg} over groups {groups}").to_lowercase(),
        Node::LeafReduce { kind, arg } => format!("leaf_reduce.{kind:?} %{arg}").to_lowercase(),
        Node::Merge(parts) => {
            let parts: Vec<String> = parts.iter().map(|(g, n)| format!("{g}: %{n}")).collect();
            format!("merge {}", parts.join(", "))
        }
    };
    format!("%{id} = {body} : {} {:?}", info.level, info.kind).replace("F32", "f32").replace("I32", "i32").replace("Bool", "bool")
}

/// The step IR as text: layout, groups, state slots, init graph, step graph, outputs.
pub fn ir(ir: &StepIr) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "layout {}", ir.layout);
    for (g, leaves) in ir.groups.leaves.iter().enumerate() {
        let names: Vec<&str> = leaves.iter().map(|&l| ir.layout.leaves[l].name.as_str()).collect();
        let _ = writeln!(out, "group {g}: {}", names.join(", "));
    }
    for (i, s) in ir.slots.iter().enumerate() {
        let aliases = if s.aliases.is_empty() { String::new() } else { format!(" (also {})", s.aliases.join(", ")) };
        let _ = writeln!(out, "state #{i} {}{aliases} : {} {:?} groups {} init %{} next %{}", s.name, s.level, s.kind, s.groups, s.init, s.next);
    }
    let _ = writeln!(out, "init:");
    for id in 0..ir.init.nodes.len() {
        let _ = writeln!(out, "  {}", node_text(&ir.init, id as NodeId));
    }
    let _ = writeln!(out, "step:");
    for id in 0..ir.graph.nodes.len() {
        let _ = writeln!(out, "  {}", node_text(&ir.graph, id as NodeId));
    }
    let _ = writeln!(out, "updates %{}", ir.updates);
    for n in &ir.named {
        let _ = writeln!(out, "named {} %{}", n.name, n.node);
    }
    for n in &ir.locals {
        let _ = writeln!(out, "local {} %{}", n.name, n.node);
    }
    out
}

/// A plan as text: for each pass its uniform and per-leaf preludes, its group programs, the
/// streams it reads and writes, the bytes it moves, and why it exists.
pub fn plan(ir: &StepIr, plan: &Plan) -> String {
    let mut out = String::new();
    let g = &ir.graph;
    for (k, pass) in plan.passes.iter().enumerate() {
        let _ = writeln!(out, "pass {k}: {}", pass.reason);
        let _ = writeln!(
            out,
            "  reads {} | writes {} | {} bytes per element",
            if pass.reads.is_empty() { "nothing".into() } else { pass.reads.join(", ") },
            if pass.writes.is_empty() { "nothing".into() } else { pass.writes.join(", ") },
            4 * (pass.reads.len() + pass.writes.len())
        );
        for &n in &pass.uniform_before {
            let _ = writeln!(out, "  before: {}", node_text(g, n));
        }
        for (n, groups) in &pass.leaf_before {
            let _ = writeln!(out, "  before (groups {groups}): {}", node_text(g, *n));
        }
        for p in &pass.programs {
            let _ = writeln!(out, "  group {}:", p.group);
            for &n in &p.nodes {
                let _ = writeln!(out, "    {}", node_text(g, n));
            }
            for (r, a) in &p.reductions {
                let _ = writeln!(out, "    partial of %{r} from %{a}");
            }
            for (t, n) in &p.writes {
                let what = match t {
                    Target::Params => "param += ".to_string(),
                    Target::Updates => "update = ".to_string(),
                    Target::Slot(s) => format!("state #{s} = "),
                };
                let _ = writeln!(out, "    {what}%{n}");
            }
        }
    }
    for &n in &plan.uniform_after {
        let _ = writeln!(out, "after: {}", node_text(g, n));
    }
    for (n, groups) in &plan.leaf_after {
        let _ = writeln!(out, "after (groups {groups}): {}", node_text(g, *n));
    }
    for (n, why) in &plan.recomputed {
        let _ = writeln!(out, "recompute %{n}: {why}");
    }
    let _ = writeln!(out, "{} pass(es), {} bytes per element in all", plan.passes.len(), plan.bytes_per_element());
    out
}
