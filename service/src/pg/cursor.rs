//! Results on the wire: a query's batches as PostgreSQL rows (text or binary, per column, as
//! the client asked), and cursors (`DECLARE … CURSOR`, `FETCH`, `CLOSE`) that hand a large
//! result out page by page, holding only the batch in hand.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch};
use futures::{Stream, StreamExt, stream};
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldInfo, QueryResponse};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use pgwire::types::format::FormatOptions;

use crate::analyst::{AnalystError, Rows};

/// The row description of `schema` in `format`.
pub fn fields(
    schema: &SchemaRef,
    format: &Format,
    options: Arc<FormatOptions>,
) -> PgWireResult<Vec<FieldInfo>> {
    arrow_schema_to_pg_fields(schema, format, Some(options))
}

/// Encodes a stream of batches as the rows of one response, tagged `tag` (`SELECT`, `FETCH`).
pub fn response<S>(
    schema: &SchemaRef,
    batches: S,
    format: &Format,
    options: Arc<FormatOptions>,
    tag: &str,
) -> PgWireResult<QueryResponse>
where
    S: Stream<Item = Result<RecordBatch, AnalystError>> + Send + 'static,
{
    let fields = Arc::new(fields(schema, format, options)?);
    let encode_with = Arc::clone(&fields);
    let rows = batches
        .map(move |batch| {
            let rows: Box<dyn Iterator<Item = PgWireResult<DataRow>> + Send> = match batch {
                Ok(batch) => match widen_int8(batch) {
                    Ok(batch) => encode_recordbatch(Arc::clone(&encode_with), batch),
                    Err(e) => Box::new(std::iter::once(Err(e))),
                },
                Err(e) => Box::new(std::iter::once(Err(PgWireError::from(e)))),
            };
            stream::iter(rows)
        })
        .flatten();
    let mut response = QueryResponse::new(fields, rows);
    response.set_command_tag(tag);
    Ok(response)
}

/// `Int8` columns (the contract's `rating`) as `Int16`: PostgreSQL has no one-byte integer,
/// the row description says `int2`, and arrow-pg 0.16 writes an `Int8` value in binary as one
/// byte, which a client reads as a different number.
fn widen_int8(batch: RecordBatch) -> PgWireResult<RecordBatch> {
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| f.data_type() == &DataType::Int8)
    {
        return Ok(batch);
    }
    let schema = batch.schema();
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if field.data_type() == &DataType::Int8 {
            let wide = arrow::compute::cast(column, &DataType::Int16)
                .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
            fields.push(field.as_ref().clone().with_data_type(DataType::Int16));
            columns.push(wide);
        } else {
            fields.push(field.as_ref().clone());
            columns.push(Arc::clone(column));
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| PgWireError::ApiError(Box::new(e)))
}

/// A declared cursor: the running query and the rows of a batch not handed out yet.
pub struct Cursor {
    rows: Rows,
    pending: Option<RecordBatch>,
}

/// A cursor as the connection keeps it: a `FETCH` holds it while its rows are sent.
pub type SharedCursor = Arc<tokio::sync::Mutex<Cursor>>;

impl Cursor {
    /// A cursor over `rows`.
    pub fn new(rows: Rows) -> Self {
        Self {
            rows,
            pending: None,
        }
    }

    /// The next rows, at most `limit` (any number without one); `None` at the end.
    async fn next_batch(
        &mut self,
        limit: Option<usize>,
    ) -> Option<Result<RecordBatch, AnalystError>> {
        let batch = match self.pending.take() {
            Some(batch) => batch,
            None => loop {
                match self.rows.next().await? {
                    Ok(batch) if batch.num_rows() == 0 => continue,
                    Ok(batch) => break batch,
                    Err(e) => return Some(Err(e)),
                }
            },
        };
        match limit {
            Some(limit) if batch.num_rows() > limit => {
                self.pending = Some(batch.slice(limit, batch.num_rows() - limit));
                Some(Ok(batch.slice(0, limit)))
            }
            _ => Some(Ok(batch)),
        }
    }
}

/// The next `count` rows of `cursor` (all that are left with `None`), streamed: the cursor
/// stays locked until the stream ends or is dropped, and what the stream did not take stays
/// in the cursor.
pub async fn fetch(
    cursor: SharedCursor,
    count: Option<usize>,
) -> impl Stream<Item = Result<RecordBatch, AnalystError>> + Send + 'static {
    let guard = cursor.lock_owned().await;
    stream::unfold((guard, count), |(mut guard, left)| async move {
        if left == Some(0) {
            return None;
        }
        match guard.next_batch(left).await? {
            Ok(batch) => {
                let left = left.map(|l| l - batch.num_rows());
                Some((Ok(batch), (guard, left)))
            }
            Err(e) => Some((Err(e), (guard, Some(0)))),
        }
    })
}
