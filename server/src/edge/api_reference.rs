//! The API reference page: the OpenAPI document rendered as plain HTML on the server. The
//! ready-made viewers (Swagger UI, Redoc, RapiDoc, Scalar) load their scripts from a CDN or
//! download them at build time; this page needs neither, runs no script and so keeps a strict
//! Content-Security-Policy. It reads the document as JSON, so it shows what the document says.
use std::fmt::Write;

use app::server::html::escape;
use serde_json::{Map, Value};

/// The whole page for `doc`.
pub fn render(doc: &utoipa::openapi::OpenApi) -> String {
    let doc = serde_json::to_value(doc).unwrap_or(Value::Null);
    let mut out = String::new();
    let info = &doc["info"];
    let title = text(&info["title"]);
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>API reference · Impact Connect</title><link rel=\"stylesheet\" href=\"{css}\">\
         </head><body><main class=\"api-reference\"><h1>{title}</h1>{intro}\
         <p>Version {version}. The same as a machine reads it: \
         <a href=\"/api/openapi.json\"><code>/api/openapi.json</code></a> (OpenAPI {openapi}).</p>",
        css = app::STYLESHEET,
        title = escape(&title),
        intro = paragraphs(&text(&info["description"])),
        version = escape(&text(&info["version"])),
        openapi = escape(&text(&doc["openapi"])),
    );
    let operations = operations(&doc);
    let tags = tags(&doc, &operations);
    out.push_str("<nav aria-label=\"Operations\"><h2>Operations</h2><ul>");
    for (tag, _) in &tags {
        let _ = write!(out, "<li><a href=\"#tag-{0}\">{0}</a><ul>", escape(tag));
        for op in operations.iter().filter(|o| &o.tag == tag) {
            let _ = write!(
                out,
                "<li><a href=\"#{}\"><code>{} {}</code></a></li>",
                op.anchor(),
                op.method.to_uppercase(),
                escape(&op.path)
            );
        }
        out.push_str("</ul></li>");
    }
    out.push_str("<li><a href=\"#schemas\">Schemas</a></li></ul></nav>");
    for (tag, description) in &tags {
        let _ = write!(
            out,
            "<section><h2 id=\"tag-{0}\">{0}</h2>{1}",
            escape(tag),
            paragraphs(description)
        );
        for op in operations.iter().filter(|o| &o.tag == tag) {
            operation(&mut out, op, &doc["components"]["responses"]);
        }
        out.push_str("</section>");
    }
    schemas(&mut out, &doc["components"]["schemas"]);
    out.push_str("</main></body></html>");
    out
}

struct Op<'a> {
    method: String,
    path: String,
    tag: String,
    body: &'a Value,
}

impl Op<'_> {
    fn anchor(&self) -> String {
        let path: String = self
            .path
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        format!("op-{}{path}", self.method)
    }
}

/// Every operation, in the document's path order, methods in a fixed order.
fn operations(doc: &Value) -> Vec<Op<'_>> {
    const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];
    let mut ops = Vec::new();
    let Some(paths) = doc["paths"].as_object() else {
        return ops;
    };
    for (path, item) in paths {
        for method in METHODS {
            if let Some(body) = item.get(method) {
                let tag = body["tags"][0].as_str().unwrap_or("other").to_string();
                ops.push(Op {
                    method: method.to_string(),
                    path: path.clone(),
                    tag,
                    body,
                });
            }
        }
    }
    ops
}

/// The tags in the document's order (with their descriptions), then any only operations name.
fn tags(doc: &Value, ops: &[Op<'_>]) -> Vec<(String, String)> {
    let mut tags: Vec<(String, String)> = doc["tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| (text(&t["name"]), text(&t["description"])))
                .collect()
        })
        .unwrap_or_default();
    for op in ops {
        if !tags.iter().any(|(t, _)| *t == op.tag) {
            tags.push((op.tag.clone(), String::new()));
        }
    }
    tags.retain(|(t, _)| ops.iter().any(|o| &o.tag == t));
    tags
}

fn operation(out: &mut String, op: &Op<'_>, shared: &Value) {
    let b = op.body;
    let _ = write!(
        out,
        "<article class=\"card\" id=\"{}\"><h3><code>{} {}</code></h3>{}{}",
        op.anchor(),
        op.method.to_uppercase(),
        escape(&op.path),
        paragraphs(&text(&b["summary"])),
        paragraphs(&text(&b["description"])),
    );
    if b["security"].is_array() {
        out.push_str("<p>Needs the session cookie (<code>impact_session</code>).</p>");
    }
    if let Some(params) = b["parameters"].as_array().filter(|p| !p.is_empty()) {
        out.push_str(
            "<h4>Parameters</h4><table><thead><tr><th>Name</th><th>In</th><th>Type</th>\
             <th>Required</th><th>Description</th></tr></thead><tbody>",
        );
        for p in params {
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&text(&p["name"])),
                escape(&text(&p["in"])),
                type_of(&p["schema"]),
                yes_no(p["required"].as_bool().unwrap_or(false)),
                inline(&text(&p["description"])),
            );
        }
        out.push_str("</tbody></table>");
    }
    if let Some(content) = b["requestBody"]["content"].as_object() {
        out.push_str("<h4>Request body</h4><ul>");
        for (media, c) in content {
            let _ = write!(
                out,
                "<li><code>{}</code>: {}</li>",
                escape(media),
                type_of(&c["schema"])
            );
        }
        out.push_str("</ul>");
    }
    if let Some(responses) = b["responses"].as_object() {
        out.push_str(
            "<h4>Responses</h4><table><thead><tr><th>Status</th><th>Description</th>\
             <th>Body</th></tr></thead><tbody>",
        );
        for (status, r) in responses {
            let (description, body) = response(r, shared);
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(status),
                inline(&description),
                body
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</article>");
}

/// A response's description and body; a shared one (`#/components/responses/…`) is read from
/// `shared`.
fn response(r: &Value, shared: &Value) -> (String, String) {
    if let Some(name) = r["$ref"].as_str().and_then(|s| s.rsplit('/').next()) {
        return response(&shared[name], &Value::Null);
    }
    let body = r["content"]
        .as_object()
        .map(|content| {
            content
                .iter()
                .map(|(media, c)| match c.get("schema") {
                    Some(s) => format!("<code>{}</code>: {}", escape(media), type_of(s)),
                    None => format!("<code>{}</code>", escape(media)),
                })
                .collect::<Vec<_>>()
                .join("<br>")
        })
        .unwrap_or_default();
    (text(&r["description"]), body)
}

fn schemas(out: &mut String, schemas: &Value) {
    out.push_str("<section><h2 id=\"schemas\">Schemas</h2>");
    let empty = Map::new();
    for (name, s) in schemas.as_object().unwrap_or(&empty) {
        let _ = write!(
            out,
            "<article class=\"card\" id=\"schema-{0}\"><h3>{0}</h3>{1}",
            escape(name),
            paragraphs(&text(&s["description"]))
        );
        schema_body(out, s);
        out.push_str("</article>");
    }
    out.push_str("</section>");
}

fn schema_body(out: &mut String, s: &Value) {
    if let Some(props) = s["properties"].as_object() {
        let required: Vec<&str> = s["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        out.push_str(
            "<table><thead><tr><th>Field</th><th>Type</th><th>Required</th><th>Description</th>\
             </tr></thead><tbody>",
        );
        for (field, p) in props {
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(field),
                type_of(p),
                yes_no(required.contains(&field.as_str())),
                inline(&text(&p["description"])),
            );
        }
        out.push_str("</tbody></table>");
    } else if let Some(variants) = s["oneOf"].as_array() {
        out.push_str("<p>One of:</p><ul>");
        for v in variants {
            out.push_str("<li>");
            out.push_str(&paragraphs(&text(&v["description"])));
            schema_body(out, v);
            out.push_str("</li>");
        }
        out.push_str("</ul>");
    } else {
        let _ = write!(out, "<p>{}</p>", type_of(s));
    }
}

/// A schema's type in a few words: a link for a named schema, `T[]` for arrays, the values of
/// an enum, `T | null` for the optional.
fn type_of(s: &Value) -> String {
    if let Some(r) = s["$ref"].as_str() {
        return schema_link(r.rsplit('/').next().unwrap_or(r));
    }
    if let Some(values) = s["enum"].as_array() {
        let values: Vec<String> = values
            .iter()
            .map(|v| format!("<code>{}</code>", escape(&v.to_string())))
            .collect();
        return values.join(" | ");
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(variants) = s[key].as_array() {
            let parts: Vec<String> = variants.iter().map(type_of).collect();
            return parts.join(if key == "allOf" { " &amp; " } else { " | " });
        }
    }
    let types: Vec<String> = match &s["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(ts) => ts.iter().map(text).collect(),
        _ => vec!["any".to_string()],
    };
    let types: Vec<String> = types
        .into_iter()
        .map(|t| match t.as_str() {
            "array" => format!("{}[]", type_of(&s["items"])),
            _ => match s["format"].as_str() {
                Some(f) => format!("{} ({})", escape(&t), escape(f)),
                None => escape(&t),
            },
        })
        .collect();
    types.join(" | ")
}

fn schema_link(name: &str) -> String {
    format!("<a href=\"#schema-{0}\">{0}</a>", escape(name))
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// Paragraphs separated by a blank line, each with `code` spans.
fn paragraphs(s: &str) -> String {
    s.split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| format!("<p>{}</p>", inline(p)))
        .collect()
}

/// Escaped text with the document's `code` spans as `<code>`.
fn inline(s: &str) -> String {
    escape(s)
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{part}</code>")
            } else {
                part.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_the_document_is_escaped_and_code_spans_kept() {
        assert_eq!(
            inline("a <b> & `x<y>`"),
            "a &lt;b&gt; &amp; <code>x&lt;y&gt;</code>"
        );
        assert_eq!(paragraphs("one\n\ntwo"), "<p>one</p><p>two</p>");
    }

    #[test]
    fn types_read_as_people_write_them() {
        let s: Value = serde_json::json!({
            "type": ["array", "null"],
            "items": { "$ref": "#/components/schemas/ConnectionView" }
        });
        assert_eq!(
            type_of(&s),
            "<a href=\"#schema-ConnectionView\">ConnectionView</a>[] | null"
        );
        let e: Value = serde_json::json!({ "type": "string", "enum": ["pending", "validated"] });
        assert_eq!(
            type_of(&e),
            "<code>&quot;pending&quot;</code> | <code>&quot;validated&quot;</code>"
        );
    }
}
