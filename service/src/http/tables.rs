//! Tables as response bodies: member sets streamed as CSV or Arrow IPC straight from the
//! in-memory index (a chunk at a time, never the whole set in one buffer), and query results
//! as JSON rows, CSV or Arrow.

use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::ipc::writer::StreamWriter;
use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::Value as Json_;

use super::error::ApiError;
use super::extract::{ARROW_STREAM, TableFormat};
use crate::index::Snapshot;

/// Members per streamed chunk.
const CHUNK: usize = 65_536;

fn members_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, false),
        Field::new(
            "since",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
    ]))
}

/// Quotes a CSV field when it needs it (RFC 4180).
fn csv_field(text: &str, out: &mut String) {
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

/// The whole member set of `segment` in `snapshot` (empty before its first refresh) as a
/// streamed CSV (`customer_id,since`) or Arrow IPC stream body, ordered by `customer_id`.
pub fn members_body(snapshot: Arc<Snapshot>, segment: String, format: TableFormat) -> Response {
    enum State {
        Start,
        After(String),
        Done,
    }
    let arrow = format == TableFormat::Arrow;
    let schema = members_schema();
    let mut writer = if arrow {
        StreamWriter::try_new(Vec::new(), &schema).ok()
    } else {
        None
    };
    let head: Bytes = match writer.as_mut() {
        Some(w) => Bytes::from(std::mem::take(w.get_mut())),
        None => Bytes::from_static(b"customer_id,since\n"),
    };
    let stream = futures::stream::unfold(
        (State::Start, writer, Some(head)),
        move |(state, mut writer, head)| {
            let snapshot = Arc::clone(&snapshot);
            let segment = segment.clone();
            let schema = Arc::clone(&schema);
            async move {
                if let Some(head) = head {
                    return Some((Ok::<Bytes, std::io::Error>(head), (state, writer, None)));
                }
                let after = match &state {
                    State::Done => return None,
                    State::Start => None,
                    State::After(id) => Some(id.as_str()),
                };
                let (items, more) = snapshot.page(&segment, after, CHUNK);
                let next_state = match (more, items.last()) {
                    (true, Some(last)) => State::After(last.0.to_string()),
                    _ => State::Done,
                };
                let chunk = match writer.as_mut() {
                    Some(w) => {
                        let ids: StringArray = items.iter().map(|m| Some(m.0)).collect();
                        let since = TimestampMicrosecondArray::from(
                            items
                                .iter()
                                .map(|m| m.1.timestamp_micros())
                                .collect::<Vec<_>>(),
                        )
                        .with_timezone("UTC");
                        let written =
                            RecordBatch::try_new(schema, vec![Arc::new(ids), Arc::new(since)])
                                .map_err(std::io::Error::other)
                                .and_then(|b| {
                                    if b.num_rows() > 0 {
                                        w.write(&b).map_err(std::io::Error::other)?;
                                    }
                                    if matches!(next_state, State::Done) {
                                        w.finish().map_err(std::io::Error::other)?;
                                    }
                                    Ok(())
                                });
                        if let Err(e) = written {
                            return Some((Err(e), (State::Done, writer, None)));
                        }
                        Bytes::from(std::mem::take(w.get_mut()))
                    }
                    None => {
                        let mut text = String::with_capacity(items.len() * 40);
                        for (id, since) in &items {
                            csv_field(id, &mut text);
                            text.push(',');
                            text.push_str(&kitle_planner::format_instant(since));
                            text.push('\n');
                        }
                        Bytes::from(text)
                    }
                };
                Some((Ok(chunk), (next_state, writer, None)))
            }
        },
    );
    let content_type = if arrow {
        ARROW_STREAM
    } else {
        "text/csv; charset=utf-8"
    };
    (
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Query results in the asked format: JSON `{"columns": [...], "rows": [[...]...]}`, CSV with a
/// header, or an Arrow IPC stream.
pub fn batches_body(
    schema: SchemaRef,
    batches: &[RecordBatch],
    format: TableFormat,
) -> Result<Response, ApiError> {
    let internal = |e: arrow::error::ArrowError| {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("cannot write the result: {e}"),
        )
    };
    match format {
        TableFormat::Json => {
            let columns: Vec<Json_> = schema
                .fields()
                .iter()
                .map(|f| Json_::String(f.name().clone()))
                .collect();
            let mut rows = Vec::new();
            for batch in batches {
                for row in 0..batch.num_rows() {
                    rows.push(Json_::Array(
                        batch
                            .columns()
                            .iter()
                            .map(|c| kitle_data::json::json_value(c.as_ref(), row))
                            .collect(),
                    ));
                }
            }
            Ok(axum::Json(serde_json::json!({"columns": columns, "rows": rows})).into_response())
        }
        TableFormat::Csv => {
            let mut buffer = Vec::new();
            {
                let mut writer = arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .with_timestamp_tz_format("%Y-%m-%dT%H:%M:%S%.fZ".into())
                    .build(&mut buffer);
                for batch in batches {
                    writer.write(batch).map_err(internal)?;
                }
            }
            if batches.is_empty() {
                let header: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                buffer = format!("{}\n", header.join(",")).into_bytes();
            }
            Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], buffer).into_response())
        }
        TableFormat::Arrow => {
            let mut writer = StreamWriter::try_new(Vec::new(), &schema).map_err(internal)?;
            for batch in batches {
                writer.write(batch).map_err(internal)?;
            }
            writer.finish().map_err(internal)?;
            let buffer = writer.into_inner().map_err(internal)?;
            Ok(([(header::CONTENT_TYPE, ARROW_STREAM)], buffer).into_response())
        }
    }
}
