//! The web console: static files (HTML, CSS, ES modules, the vendored chart library) built
//! into the binary from `service/console/` and served at `/` and `/console/…`.
//!
//! The console is a client of the public `/v1` API and nothing else, so everything it shows
//! is also scriptable; these routes only hand out files, which hold no shop data, and so need
//! no token (the console asks for one and sends it with its API calls). Each file carries an
//! entity tag computed at build time and `Cache-Control: no-cache`, so a browser revalidates
//! with a cheap `304` and never runs a stale console after an upgrade.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::Path as UrlPath;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::error::ApiError;
use super::extract::not_modified;

/// `(path under console/, bytes, entity tag)` of every console file, sorted by path.
const ASSETS: &[(&str, &[u8], &str)] = include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));

/// The page every console view is rendered into.
const INDEX: &str = "index.html";

/// Where the console's files come from.
#[derive(Debug, Clone)]
enum Source {
    /// The copy built into the binary.
    Embedded,
    /// A folder read at each request (`console_dir`, for working on the console).
    Folder(PathBuf),
}

/// The console's routes (`/`, `/console/{*path}`), or none when the console is switched off.
pub fn routes(state: &AppState) -> Router<Arc<AppState>> {
    if !state.config.console {
        return Router::new();
    }
    let source = Arc::new(match &state.config.console_dir {
        Some(dir) => Source::Folder(dir.clone()),
        None => Source::Embedded,
    });
    let index = Arc::clone(&source);
    Router::new()
        .route(
            "/",
            get(move |headers: HeaderMap| {
                let source = Arc::clone(&index);
                async move { serve(&source, INDEX, &headers) }
            }),
        )
        .route(
            "/console/{*path}",
            get(move |UrlPath(path): UrlPath<String>, headers: HeaderMap| {
                let source = Arc::clone(&source);
                async move { serve(&source, &path, &headers) }
            }),
        )
}

/// Whether `path` is one of the console's open routes (no token needed).
pub fn is_console_path(path: &str) -> bool {
    path == "/" || path.starts_with("/console/")
}

fn serve(source: &Source, path: &str, headers: &HeaderMap) -> Response {
    let found = match source {
        Source::Embedded => ASSETS
            .iter()
            .find(|(p, _, _)| *p == path)
            .map(|(_, bytes, etag)| (bytes.to_vec(), (*etag).to_string())),
        Source::Folder(dir) => read_from(dir, path),
    };
    let Some((bytes, etag)) = found else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("the console has no file {path:?}"),
        )
        .into_response();
    };
    let mut response = if not_modified(headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, bytes).into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media_type(path)),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, value);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// A file of the development folder, refusing anything that would leave it.
fn read_from(dir: &Path, path: &str) -> Option<(Vec<u8>, String)> {
    let relative = Path::new(path);
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return None;
    }
    let bytes = std::fs::read(dir.join(relative)).ok()?;
    let etag = format!("\"dev-{:x}-{}\"", checksum(&bytes), bytes.len());
    Some((bytes, etag))
}

/// FNV-1a, enough to tell two versions of a development file apart.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The media type of a console file, by its extension.
fn media_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "json" => "application/json",
        _ => "text/plain; charset=utf-8",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_modules_are_built_in() {
        let paths: Vec<&str> = ASSETS.iter().map(|(p, _, _)| *p).collect();
        assert!(paths.contains(&INDEX), "{paths:?}");
        assert!(paths.contains(&"js/app.js"), "{paths:?}");
        assert!(paths.contains(&"vendor/uplot/uPlot.esm.js"), "{paths:?}");
        assert!(paths.contains(&"vendor/uplot/LICENSE"), "{paths:?}");
        assert_eq!(media_type("js/app.js"), "text/javascript; charset=utf-8");
    }

    #[test]
    fn the_development_folder_is_not_left() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
        assert!(read_from(&dir, INDEX).is_some());
        assert!(read_from(&dir, "../Cargo.toml").is_none());
        assert!(read_from(&dir, "/etc/hostname").is_none());
    }
}
