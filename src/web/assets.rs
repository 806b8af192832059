//! The static files (CSS, the live-update script, the icon), compiled into the
//! binary and served under content-hashed names such as `/static/app.3f2a9c1e.css`.
//!
//! A hashed name never changes its content, so browsers may cache it for a year;
//! a new build with a changed file gets a new name. Only the exact hashed names
//! are served: anything else under `/static/` (old hashes, bare names, `..`) is a
//! 404. This module reads no files at run time.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

struct Asset {
    /// The name in `static/`, e.g. `app.css`.
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const FILES: [Asset; 3] = [
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../static/app.css"),
    },
    Asset {
        name: "live.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../static/live.js"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../static/icon.svg"),
    },
];

/// The URLs the templates link to.
#[derive(Debug)]
pub struct Urls {
    pub css: String,
    pub js: String,
    pub icon: String,
}

static HASHED: LazyLock<Vec<(String, &'static Asset)>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|a| (hashed_name(a.name, a.bytes), a))
        .collect()
});

static URLS: LazyLock<Urls> = LazyLock::new(|| Urls {
    css: url("app.css"),
    js: url("live.js"),
    icon: url("icon.svg"),
});

pub fn urls() -> &'static Urls {
    &URLS
}

/// `/static/<name with hash>` for a file in `static/`.
fn url(name: &str) -> String {
    HASHED
        .iter()
        .find(|(_, a)| a.name == name)
        .map(|(h, _)| format!("/static/{h}"))
        .unwrap_or_default()
}

/// `GET /static/{file}`: the asset, immutable for a year, or 404.
pub async fn serve(Path(file): Path<String>) -> Response {
    match HASHED.iter().find(|(h, _)| *h == file) {
        Some((_, a)) => (
            [
                (header::CONTENT_TYPE, a.content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            a.bytes,
        )
            .into_response(),
        None => not_found().await,
    }
}

/// `GET /favicon.ico`: browsers ask for it by that name; answer with the icon.
pub async fn favicon() -> Response {
    let a = &FILES[2];
    (
        [
            (header::CONTENT_TYPE, a.content_type),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        a.bytes,
    )
        .into_response()
}

pub async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// `app.css` → `app.<8 hex digits of FNV-1a>.css`. Not cryptographic: it only has
/// to change when the content changes.
fn hashed_name(name: &str, bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let short = (h ^ (h >> 32)) as u32;
    match name.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.{short:08x}.{ext}"),
        None => format!("{name}.{short:08x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names_keep_the_extension_and_change_with_the_content() {
        let a = hashed_name("app.css", b"body{}");
        assert!(
            a.starts_with("app.") && a.ends_with(".css") && a.len() == 16,
            "{a}"
        );
        assert_ne!(a, hashed_name("app.css", b"body{ }"));
    }

    #[test]
    fn every_file_has_a_url() {
        let u = urls();
        for url in [&u.css, &u.js, &u.icon] {
            assert!(url.starts_with("/static/"), "{url}");
        }
    }
}
