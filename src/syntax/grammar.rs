//! The pest parser generated from `grammar/opt.pest`; the only file that names pest's `Rule`
//! besides the lowering, which turns its pairs into the AST.

#[derive(pest_derive::Parser)]
#[grammar = "grammar/opt.pest"]
pub struct OptParser;

/// How a rule is named in a syntax error, or `None` to leave it out of "expected ..." lists.
pub fn describe(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::EOI => "end of file",
        Rule::ident => "a name",
        Rule::type_name | Rule::named_type | Rule::type_expr => "a type",
        Rule::number => "a number",
        Rule::string => "a string",
        Rule::expr | Rule::bexpr | Rule::expr_item | Rule::expr_stmt => "an expression",
        Rule::params => "`(`",
        Rule::param => "a parameter",
        Rule::block => "`{`",
        Rule::call_args | Rule::paren_or_tuple => "`(`",
        Rule::index | Rule::list => "`[`",
        Rule::map => "`{`",
        Rule::kwarg => "a keyword argument",
        Rule::arm => "a partition arm (`\"glob\" => transform`)",
        Rule::wildcard => "`_`",
        Rule::range => "`in [lo, hi)`",
        Rule::range_open => "`[` or `(`",
        Rule::range_close => "`]` or `)`",
        Rule::ret_type => "`->`",
        Rule::state_decl => "`state`",
        Rule::update_def => "`update`",
        Rule::eval_params_def => "`eval_params`",
        Rule::pattern => "a name or a tuple of names",
        Rule::assign_op => "`=`",
        Rule::optional_mark => "`?`",
        Rule::kw_let => "`let`",
        Rule::kw_def => "`def`",
        Rule::kw_transform => "`transform`",
        Rule::kw_schedule => "`schedule`",
        Rule::kw_builtin => "`builtin`",
        Rule::kw_state => "`state`",
        Rule::kw_update => "`update`",
        Rule::kw_eval_params => "`eval_params`",
        Rule::kw_if => "`if`",
        Rule::kw_else => "`else`",
        Rule::kw_for => "`for`",
        Rule::kw_in => "`in`",
        Rule::kw_fn => "`fn`",
        Rule::or | Rule::and | Rule::eq | Rule::ne | Rule::le | Rule::ge | Rule::lt | Rule::gt => {
            "an operator"
        }
        Rule::add | Rule::sub | Rule::mul | Rule::div | Rule::rem | Rule::pow => "an operator",
        Rule::is | Rule::is_not => "an operator",
        Rule::let_item | Rule::def_item | Rule::transform_item | Rule::schedule_item | Rule::builtin_item => {
            "a definition"
        }
        Rule::let_stmt | Rule::for_stmt | Rule::assert_stmt | Rule::reset_stmt | Rule::revert_stmt => {
            "a statement"
        }
        _ => return None,
    })
}
