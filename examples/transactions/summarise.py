"""Summarise a year of card transactions from a read-only CSV.

Run it with the data directory granted read-only:

    moat run examples/transactions/summarise.py --dir examples/transactions/data:/data:ro

It reads /data/transactions.csv, loads it into an in-memory SQLite database,
prints spending per category and per month, flags unusually large payments,
and writes the category table to /workspace/summary.csv.
"""

import csv
import sqlite3
import statistics
from decimal import Decimal

with open("/data/transactions.csv", newline="", encoding="utf-8") as source:
    rows = list(csv.DictReader(source))

db = sqlite3.connect(":memory:")
db.execute(
    "CREATE TABLE tx (date TEXT, id TEXT, account TEXT, merchant TEXT,"
    " category TEXT, pence INTEGER)"
)
db.executemany(
    "INSERT INTO tx VALUES (?, ?, ?, ?, ?, ?)",
    [
        (
            row["date"],
            row["transaction_id"],
            row["account"],
            row["merchant"],
            row["category"],
            int(Decimal(row["amount"]) * 100),
        )
        for row in rows
    ],
)

total = Decimal(db.execute("SELECT SUM(pence) FROM tx").fetchone()[0]) / 100
print(f"{len(rows)} transactions, total £{total:,.2f}\n")

print(f"{'category':<15}{'count':>7}{'total':>13}{'median':>10}")
categories = db.execute(
    "SELECT category, COUNT(*), SUM(pence) FROM tx GROUP BY category ORDER BY SUM(pence) DESC"
).fetchall()
summary = []
for category, count, pence in categories:
    amounts = [p / 100 for (p,) in db.execute("SELECT pence FROM tx WHERE category = ?", (category,))]
    median = statistics.median(amounts)
    summary.append((category, count, pence / 100, median))
    print(f"{category:<15}{count:>7}{pence / 100:>13,.2f}{median:>10.2f}")

print("\nspending per month")
for month, pence in db.execute(
    "SELECT substr(date, 1, 7) AS month, SUM(pence) FROM tx GROUP BY month ORDER BY month"
):
    bar = "#" * round(pence / 100 / 500)
    print(f"{month}  {pence / 100:>10,.2f}  {bar}")

amounts = [int(Decimal(row["amount"]) * 100) / 100 for row in rows]
mean = statistics.fmean(amounts)
spread = statistics.stdev(amounts)
threshold = mean + 3 * spread
outliers = [row for row in rows if float(row["amount"]) > threshold]
print(f"\n{len(outliers)} payments above £{threshold:,.2f} (mean + 3 standard deviations):")
for row in sorted(outliers, key=lambda r: -float(r["amount"]))[:5]:
    print(f"  {row['date']}  {row['merchant']:<16}{float(row['amount']):>9,.2f}  {row['account']}")

with open("/workspace/summary.csv", "w", newline="", encoding="utf-8") as out:
    writer = csv.writer(out)
    writer.writerow(["category", "count", "total", "median"])
    writer.writerows(summary)
print("\nwrote /workspace/summary.csv")
