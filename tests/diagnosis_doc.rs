//! docs/diagnosis.md is the rule table in prose: it must list the rules of `RULES` in the same order.

#[test]
fn diagnosis_doc_lists_every_rule_in_order() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/diagnosis.md")).expect("read doc");
    let documented: Vec<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .filter_map(|l| l.split('`').nth(1).map(str::to_string))
        .collect();
    let table: Vec<String> = whoclosed::diagnose::RULES.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(
        documented, table,
        "docs/diagnosis.md headings (### N. `rule_id`) must follow RULES"
    );
}
