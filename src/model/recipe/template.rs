//! `{name}` templates in recipe arguments; `{{` and `}}` are literal braces.

use std::collections::BTreeMap;

pub type Vars = BTreeMap<String, String>;

pub fn render(text: &str, vars: &Vars) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(['{', '}']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if tail.starts_with('}') {
            return Err(format!("unmatched `}}` in `{text}`"));
        }
        let end = tail.find('}').ok_or_else(|| format!("unclosed `{{` in `{text}`"))?;
        let key = &tail[1..end];
        let value = vars.get(key).ok_or_else(|| {
            if key.starts_with("dep.") {
                format!("`{{{key}}}` in `{text}`: that dependency is not part of this build")
            } else {
                format!("unknown template `{{{key}}}` in `{text}`")
            }
        })?;
        out.push_str(value);
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

pub fn render_all(items: &[String], vars: &Vars) -> Result<Vec<String>, String> {
    items.iter().map(|item| render(item, vars)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_refuses_unknowns() {
        let vars: Vars = [("prefix", "/usr"), ("dep.lib.cflags", "-I/x")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(render("--prefix={prefix}", &vars).unwrap(), "--prefix=/usr");
        assert_eq!(
            render("CFLAGS={dep.lib.cflags} {{x}}", &vars).unwrap(),
            "CFLAGS=-I/x {x}"
        );
        assert!(render("{nope}", &vars).unwrap_err().contains("unknown template"));
        assert!(render("{dep.zz.libs}", &vars)
            .unwrap_err()
            .contains("not part of this build"));
        assert!(render("{open", &vars).is_err());
    }
}
