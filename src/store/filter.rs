//! The decision log's filters (`LogQuery`) as a SQL `WHERE` clause, once for
//! both stores: SQLite (`?n` parameters, epoch milliseconds) and PostgreSQL
//! (`$n`, typed times) differ only in what a [`Dialect`] says. User input
//! only ever travels as a bound parameter.

use chrono::{DateTime, Utc};

use super::calls::{LogQuery, MIN_SUFFIX_DIGITS, digits};

/// The deciding rule as shown and filtered: an exclusive-mode block has no
/// rule of its own, so `exclusive` (the trunk's mode) is what decided it.
pub(crate) const RULE: &str = "coalesce(rule, CASE WHEN list = 'exclusive' THEN 'exclusive' END)";

/// The deciding list as the stats name it: its name (`spam`, `support.blacklist`), as the
/// report and the log's LIST column do, else its kind (`exclusive`, `protected`, `default`).
pub(crate) const LIST: &str = "coalesce(nullif(list_name, ''), list)";

/// What differs between the two stores' SQL.
pub(crate) trait Dialect {
    /// A bound parameter's value.
    type Arg;
    /// The placeholder of the `n`th parameter (1-based).
    fn placeholder(n: usize) -> String;
    fn time(t: DateTime<Utc>) -> Self::Arg;
    fn text(s: String) -> Self::Arg;
    /// Whether `col` ends with the `len` digits bound at `p`, or `p` ends
    /// with `col`.
    fn ends_either_way(col: &str, len: usize, p: &str) -> String;
}

/// ` WHERE …` (or nothing) and its bound values, in order. `scoped`: the
/// table has the `tenant` and `user_ext` columns (a log written before them
/// holds only default-tenant calls without a user, which the filters treat
/// as empty values).
pub(crate) fn where_clause<D: Dialect>(q: &LogQuery, scoped: bool) -> (String, Vec<D::Arg>) {
    let mut conds: Vec<String> = Vec::new();
    let mut args: Vec<D::Arg> = Vec::new();
    let bind = |v: D::Arg, args: &mut Vec<D::Arg>| {
        args.push(v);
        D::placeholder(args.len())
    };
    if let Some(t) = q.since {
        let p = bind(D::time(t), &mut args);
        conds.push(format!("time >= {p}"));
    }
    if let Some(t) = q.until {
        let p = bind(D::time(t), &mut args);
        conds.push(format!("time < {p}"));
    }
    let (tenant, user) = if scoped {
        ("tenant", "user_ext")
    } else {
        ("CAST('' AS TEXT)", "CAST('' AS TEXT)")
    };
    for (column, value) in [
        ("verdict", &q.verdict),
        ("trunk", &q.trunk),
        (RULE, &q.rule),
        (tenant, &q.tenant),
        (user, &q.user),
    ] {
        if let Some(v) = value {
            let p = bind(D::text(v.clone()), &mut args);
            conds.push(format!("{column} = {p}"));
        }
    }
    if let Some(caller) = &q.caller {
        let p = bind(D::text(caller.clone()), &mut args);
        let mut alts = vec![format!("caller_raw = {p}"), format!("caller_e164 = {p}")];
        let d = digits(caller);
        if !d.is_empty() {
            let len = d.len();
            let pd = bind(D::text(d), &mut args);
            for col in ["caller_digits", "e164_digits"] {
                alts.push(format!("{col} = {pd}"));
                if len >= MIN_SUFFIX_DIGITS {
                    alts.push(format!(
                        "(length({col}) >= {MIN_SUFFIX_DIGITS} AND ({}))",
                        D::ends_either_way(col, len, &pd)
                    ));
                }
            }
        }
        conds.push(format!("({})", alts.join(" OR ")));
    }
    if conds.is_empty() {
        (String::new(), args)
    } else {
        (format!(" WHERE {}", conds.join(" AND ")), args)
    }
}
