"""The district's quarterly report: figures from ``statistics`` written as XLSX, printable HTML and CSV."""
