//! JSON documents on stdout, as pulumi prints them (or damaged, when a fault asks for it).

use std::io::Write;

use crate::context::Ctx;

/// Prints a JSON document the way Pulumi's `ui.PrintJSON` does: two-space indentation and a newline.
///
/// Structs keep their field order (Go prints struct fields in declaration order); maps are sorted.
pub(crate) fn print_json<T: serde::Serialize + ?Sized>(ctx: &Ctx, v: &T) {
    let mut out = std::io::stdout().lock();
    let text = serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".to_owned());
    if ctx.faults.garbage_json(&ctx.command) {
        // Deliberately malformed: half a document and trailing junk.
        let mut cut = (text.len() / 2).max(1).min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let _ = writeln!(out, "{} <<garbage", &text[..cut]);
        return;
    }
    let _ = writeln!(out, "{text}");
}
