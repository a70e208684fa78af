"""Where results leave the process: ClickHouse schema and batch writer, dead-letter output."""
