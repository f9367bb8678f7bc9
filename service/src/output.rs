//! Writing query results in the formats the CLI offers.

use std::io::Write;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use clap::ValueEnum;

use crate::error::CliError;

/// How a table is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableFormat {
    /// Aligned text for people.
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON array of objects.
    Json,
    /// A Parquet file on stdout.
    Parquet,
}

/// Writes `batches` (with `schema`, so an empty result still shows its columns) to `out`.
pub fn write_batches(
    out: &mut dyn Write,
    format: TableFormat,
    schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<(), CliError> {
    let io = |e: std::io::Error| CliError::runtime(format!("writing output: {e}"));
    let arrow_err = |e: arrow::error::ArrowError| CliError::runtime(format!("writing output: {e}"));
    match format {
        TableFormat::Table => {
            let text = arrow::util::pretty::pretty_format_batches_with_schema(schema, batches)
                .map_err(arrow_err)?;
            writeln!(out, "{text}").map_err(io)?;
        }
        TableFormat::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut *out);
            if batches.is_empty() {
                writer
                    .write(&RecordBatch::new_empty(schema))
                    .map_err(arrow_err)?;
            }
            for batch in batches {
                writer.write(batch).map_err(arrow_err)?;
            }
        }
        TableFormat::Json => {
            let mut writer = arrow::json::ArrayWriter::new(Vec::new());
            for batch in batches {
                writer.write(batch).map_err(arrow_err)?;
            }
            writer.finish().map_err(arrow_err)?;
            let mut bytes = writer.into_inner();
            if bytes.is_empty() {
                bytes = b"[]".to_vec();
            }
            out.write_all(&bytes).map_err(io)?;
            writeln!(out).map_err(io)?;
        }
        TableFormat::Parquet => {
            let mut buffer = Vec::new();
            let mut writer = parquet::arrow::ArrowWriter::try_new(&mut buffer, schema, None)
                .map_err(|e| CliError::runtime(format!("writing parquet: {e}")))?;
            for batch in batches {
                writer
                    .write(batch)
                    .map_err(|e| CliError::runtime(format!("writing parquet: {e}")))?;
            }
            writer
                .close()
                .map_err(|e| CliError::runtime(format!("writing parquet: {e}")))?;
            out.write_all(&buffer).map_err(io)?;
        }
    }
    out.flush().map_err(io)
}
