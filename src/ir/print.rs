//! Stable text forms of the step IR and of a plan, for `optc emit --ir` and `--plan` and their
//! snapshots.

use std::fmt::Write;

use super::plan::{Plan, Target};
use super::{ConstBits, Graph, MatOp, Node, NodeId, StepIr, Storage};

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
        Node::AxisReduce { kind, arg, axes } => {
            let axes: Vec<String> = (0..32).filter(|k| axes & (1 << k) != 0).map(|k| k.to_string()).collect();
            format!("axis_reduce.{} %{arg} over axes {}", format!("{kind:?}").to_lowercase(), axes.join(","))
        }
        Node::Matrix { op, args } => {
            let args: Vec<String> = args.iter().map(|a| format!("%{a}")).collect();
            let axes = match op {
                MatOp::Permute(v) | MatOp::Reshape(v) => format!(" {v:?}"),
                _ => String::new(),
            };
            format!("{}{axes} {}", op.name(), args.join(", "))
        }
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
        let mut stored = if s.storage == Storage::F32 { String::new() } else { format!(" stored {}", s.storage.name()) };
        // Per group, the axes a slot is kept reduced over.
        for (g, c) in s.collapsed.iter().enumerate().filter(|(_, c)| **c != 0) {
            let axes: Vec<String> = (0..32).filter(|k| c & (1 << k) != 0).map(|k| k.to_string()).collect();
            stored.push_str(&format!(" reduced over axes {} in group {g}", axes.join(",")));
        }
        let _ = writeln!(out, "state #{i} {}{aliases} : {} {:?}{stored} groups {} init %{} next %{}", s.name, s.level, s.kind, s.groups, s.init, s.next);
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
    if let Some(eval) = &ir.eval {
        let _ = writeln!(out, "eval:");
        for id in 0..eval.graph.nodes.len() {
            let _ = writeln!(out, "  {}", node_text(&eval.graph, id as NodeId));
        }
        let _ = writeln!(out, "eval_params %{}", eval.weights);
    }
    out
}

/// A plan as text: for each pass its uniform and per-leaf preludes, its group programs, the
/// streams it reads and writes, the bytes it moves, and why it exists.
pub fn plan(ir: &StepIr, plan: &Plan) -> String {
    let mut out = String::new();
    let g = &ir.graph;
    let list = |names: &[String]| if names.is_empty() { "nothing".to_string() } else { names.join(", ") };
    for (k, pass) in plan.passes.iter().enumerate() {
        let _ = writeln!(out, "pass {k}: {}", pass.reason);
        let bytes = |p: &crate::ir::plan::GroupProgram| p.bytes;
        let same = pass.programs.windows(2).all(|w| w[0].stream_reads == w[1].stream_reads && w[0].stream_writes == w[1].stream_writes);
        match pass.programs.first() {
            Some(p) if same => {
                let _ = writeln!(out, "  reads {} | writes {} | {} bytes per element", list(&p.stream_reads), list(&p.stream_writes), bytes(p));
            }
            // Groups with transforms of their own move their own streams.
            Some(_) => {
                for p in &pass.programs {
                    let (r, w) = (list(&p.stream_reads), list(&p.stream_writes));
                    let _ = writeln!(out, "  group {}: reads {r} | writes {w} | {} bytes per element", p.group, bytes(p));
                }
            }
            None => {
                let _ = writeln!(out, "  reads nothing | writes nothing | 0 bytes per element");
            }
        }
        for &n in &pass.uniform_before {
            let _ = writeln!(out, "  before: {}", node_text(g, n));
        }
        for (n, groups) in &pass.leaf_before {
            let _ = writeln!(out, "  before (groups {groups}): {}", node_text(g, *n));
        }
        for (n, group) in &pass.reduced_before {
            let _ = writeln!(out, "  before (group {group}, reduced over axes): {}", node_text(g, *n));
        }
        for p in &pass.programs {
            let rows = if p.rows { ", row by row" } else { "" };
            let _ = writeln!(out, "  group {}{rows}:", p.group);
            for &n in &p.nodes {
                let _ = writeln!(out, "    {}", node_text(g, n));
            }
            for (r, a) in &p.reductions {
                let _ = writeln!(out, "    partial of %{r} from %{a}");
            }
            for (r, a, _) in &p.axis_reductions {
                let _ = writeln!(out, "    accumulates %{r} from %{a}");
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
    for (n, group) in &plan.reduced_after {
        let _ = writeln!(out, "after (group {group}, reduced over axes): {}", node_text(g, *n));
    }
    for (s, n, group) in &plan.reduced_writes {
        let _ = writeln!(out, "after (group {group}): state #{s} = %{n}, stored reduced over axes");
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
    let bytes = plan.bytes_per_element(&ir.group_elements());
    let bytes = if bytes.fract() == 0.0 { format!("{bytes}") } else { format!("{bytes:.1}") };
    let _ = writeln!(out, "{} pass(es), {bytes} bytes per element in all on this layout", plan.passes.len());
    out
}
