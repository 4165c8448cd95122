//! The bundled example: a read-only CSV of transactions summarised with
//! csv, sqlite3 and statistics, writing its table into `--workspace`.

use crate::support::{finish, moat_python, tempdir, workspace_root};

#[test]
fn demo_transactions_summary() {
    let example = workspace_root().join("examples/transactions");
    let csv = std::fs::read_to_string(example.join("data/transactions.csv"))
        .expect("read the example data");
    let transactions = csv.lines().count() - 1;
    let mut categories: Vec<&str> = csv
        .lines()
        .skip(1)
        .filter_map(|line| line.split(',').nth(4))
        .collect();
    categories.sort_unstable();
    categories.dedup();
    let workspace = tempdir();

    let finished = finish(
        moat_python()
            .args(["run", "examples/transactions/summarise.py"])
            .args(["--dir", "examples/transactions/data:/data:ro"])
            .arg("--workspace")
            .arg(workspace.path()),
    );

    assert_eq!(finished.code, 0, "{finished:#?}");
    assert_eq!(finished.stderr, "");
    let expected_start = format!("{transactions} transactions, total £");
    assert!(
        finished.stdout.starts_with(&expected_start),
        "{finished:#?}"
    );
    assert!(
        finished.stdout.contains("spending per month"),
        "{finished:#?}"
    );
    assert!(
        finished.stdout.ends_with("wrote /workspace/summary.csv\n"),
        "{finished:#?}"
    );

    let summary = std::fs::read_to_string(workspace.path().join("summary.csv"))
        .expect("the example wrote summary.csv into the workspace");
    let mut lines = summary.lines();
    assert_eq!(lines.next(), Some("category,count,total,median"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), categories.len(), "summary: {summary}");
    let counted: usize = rows
        .iter()
        .map(|row| {
            let count = row.split(',').nth(1).expect("a count column");
            count.parse::<usize>().expect("a whole count")
        })
        .sum();
    assert_eq!(counted, transactions);
}
