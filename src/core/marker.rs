//! Publishing a root's files under the claim/marker protocol.
//!
//! The marker (`index.json`) says what the published root file shows: the
//! manifest's generation and digest, the file's ETag, and where each chunk's
//! part sits in it. A writer first *claims* the marker for its generation
//! (`complete: false`, with the root file ETag it saw), writes auxiliary
//! files, then replaces the root file only if it still has that ETag, then
//! completes the marker. With conditional writes every step is conditional,
//! so an older generation never replaces a newer root file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::IndexError;
use super::chunks::{Manifest, load_part};
use crate::formats::{Format, Part};
use crate::keys;
use crate::repo::{Key, RootId};
use crate::storage::{ObjectMeta, PutMode, StorageError};
use crate::stores::Stores;

/// How many auxiliary files a publish writes at once.
const AUX_WRITES: usize = 8;

/// Where one chunk's part sits in the published root file's body, so the
/// next publish copies it instead of fetching it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PartSpan {
    chunk: u32,
    id: String,
    offset: u64,
    len: u64,
}

/// What the published root file shows, kept beside the manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Marker {
    generation: u64,
    state_digest: String,
    index_etag: String,
    #[serde(default)]
    complete: bool,
    /// The layout of the file `index_etag` names (complete markers only).
    #[serde(default)]
    layout: Vec<PartSpan>,
}

/// What [`publish_root`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Publication {
    /// This call wrote the root file.
    Wrote,
    /// The root file already shows this state (or, with conditional writes, a newer one).
    Current,
    /// Another writer is ahead or raced us: re-read the state and try again.
    Retry,
    /// As [`Publication::Retry`], but this call wrote files that go with a
    /// root file (detached signatures, `Release`, keyrings) and may have
    /// overwritten those of the root file now published: the next attempt
    /// must publish again even if the marker says the state is shown.
    Clobbered,
}

fn mode_for(etag: Option<String>, conditional: bool) -> PutMode {
    match (etag, conditional) {
        (_, false) => PutMode::Overwrite,
        (Some(etag), true) => PutMode::Update(etag),
        (None, true) => PutMode::Create,
    }
}

async fn put_marker(
    stores: &Stores,
    root: &RootId,
    marker: &Marker,
    etag: Option<String>,
    conditional: bool,
) -> Result<ObjectMeta, StorageError> {
    let body = serde_json::to_vec(marker)
        .map_err(|e| StorageError::backend("encode", "index marker", e))?;
    stores
        .put(
            &Key::IndexMarker(root.clone()),
            body.into(),
            mode_for(etag, conditional),
        )
        .await
}

/// The parts cache of `root` without its header, if it was written for the
/// state `digest` (a writer that lost a race may have replaced it since).
async fn read_parts_cache(
    stores: &Stores,
    root: &RootId,
    digest: &str,
) -> Result<Option<Vec<u8>>, IndexError> {
    let Some((bytes, _)) = stores.get_bytes_opt(&Key::PartsCache(root.clone())).await? else {
        return Ok(None);
    };
    let header = format!("{digest}\n");
    Ok(bytes.strip_prefix(header.as_bytes()).map(<[u8]>::to_vec))
}

/// Forgets what the published root file shows, so the next publish rewrites it.
pub(super) async fn forget(stores: &Stores, root: &RootId) -> Result<(), IndexError> {
    stores.delete(&Key::IndexMarker(root.clone())).await?;
    Ok(())
}

/// Publishes the root files for `manifest` unless they already show it.
/// Parts of chunks this round changed come from `fresh`, unchanged ones from
/// the published file (when the marker describes it) or their records.
/// `key` is the signing key, loaded here once per publish if not given.
/// `force` publishes even when the marker says the files show the state.
#[allow(clippy::too_many_arguments)]
pub(super) async fn publish_root<F: Format>(
    stores: &Stores,
    format: &F,
    root: &RootId,
    manifest: &Manifest<F::PartMeta>,
    conditional: bool,
    fresh: &BTreeMap<u32, Part<F::PartMeta>>,
    key: &mut Option<F::SignKey>,
    force: bool,
) -> Result<Publication, IndexError> {
    use futures::{StreamExt, TryStreamExt};
    let marker_key = Key::IndexMarker(root.clone());
    let root_key = format.root_file(root);
    let (marker, marker_etag) = match stores.get_bytes_opt(&marker_key).await? {
        Some((bytes, meta)) => (
            serde_json::from_slice::<Marker>(&bytes).unwrap_or_default(),
            Some(meta.etag),
        ),
        None => (Marker::default(), None),
    };
    let digest = manifest.digest();
    let newer = conditional && marker.generation > manifest.generation;
    if !force && marker.complete && (marker.state_digest == digest || newer) {
        // Probably current: a HEAD tells.
        let current = stores.head(&root_key).await?;
        if current.is_some_and(|c| c.etag == marker.index_etag) {
            return Ok(Publication::Current);
        }
    }
    if newer {
        // A newer state is being published (or its writer died): re-read it.
        return Ok(Publication::Retry);
    }
    // One GET gives both the ETag to replace and the parts to copy.
    let current = stores.get_bytes_opt(&root_key).await?;
    let shown = marker.complete
        && current
            .as_ref()
            .is_some_and(|(_, meta)| meta.etag == marker.index_etag);
    let base_etag = current.as_ref().map(|(_, meta)| meta.etag.clone());
    let claim = Marker {
        generation: manifest.generation,
        state_digest: digest.clone(),
        index_etag: base_etag.clone().unwrap_or_default(),
        complete: false,
        layout: Vec::new(),
    };
    let claimed = match put_marker(stores, root, &claim, marker_etag, conditional).await {
        Ok(meta) => meta,
        Err(StorageError::Precondition { .. } | StorageError::AlreadyExists { .. }) => {
            return Ok(Publication::Retry);
        }
        Err(e) => return Err(e.into()),
    };

    // The one signing-key look-up of the publish (cached per process: the
    // browse page shows the set's public keys).
    let mut key_set = None;
    if format.signed() {
        if key.is_none() {
            let set = keys::key_set_for_scope(stores, &root.scope()).await?;
            *key = Some(format.pick_key(&set)?);
            key_set = Some(set);
        } else {
            key_set = keys::key_set_for_scope(stores, &root.scope()).await.ok();
        }
    }
    let key = key.clone();
    let previous = match &current {
        Some(_) if shown && !marker.layout.is_empty() && format.caches_parts() => {
            read_parts_cache(stores, root, &marker.state_digest).await?
        }
        Some((bytes, _)) if shown && !marker.layout.is_empty() => format.reusable_body(bytes),
        _ => None,
    };
    drop(current);
    let copied = |k: u32, id: &str, meta: &F::PartMeta| -> Option<Part<F::PartMeta>> {
        let body = previous.as_ref()?;
        let span = marker.layout.iter().find(|s| s.chunk == k && s.id == id)?;
        let start = usize::try_from(span.offset).ok()?;
        let end = start.checked_add(usize::try_from(span.len).ok()?)?;
        Some(Part {
            bytes: body.get(start..end)?.to_vec(),
            meta: meta.clone(),
        })
    };
    let mut parts: Vec<Option<Part<F::PartMeta>>> = manifest
        .chunks
        .iter()
        .map(|(k, r)| fresh.get(k).cloned().or_else(|| copied(*k, &r.id, &r.part)))
        .collect();
    let missing: Vec<usize> = (0..parts.len()).filter(|i| parts[*i].is_none()).collect();
    let chunks: Vec<_> = manifest.chunks.iter().collect();
    let loaded: Vec<(usize, Option<Part<F::PartMeta>>)> = futures::stream::iter(missing)
        .map(|i| {
            let (k, reference) = chunks[i];
            async move {
                Ok::<_, IndexError>((i, load_part(stores, format, root, *k, reference).await?))
            }
        })
        .buffered(16)
        .try_collect()
        .await?;
    for (i, part) in loaded {
        match part {
            Some(part) => parts[i] = Some(part),
            // A newer manifest replaced the chunk: publish that one instead.
            None => return Ok(Publication::Retry),
        }
    }
    let parts: Vec<Part<F::PartMeta>> = parts.into_iter().flatten().collect();
    let ids: Vec<(u32, String)> = manifest
        .chunks
        .iter()
        .map(|(k, r)| (*k, r.id.clone()))
        .collect();
    let (format_, root_, digest_) = (format.clone(), root.clone(), digest.clone());
    let rendered = tokio::task::spawn_blocking(move || -> Result<_, IndexError> {
        let (format, root) = (format_, root_);
        let mut rendered = format.render_root(&root, &parts);
        let part_ids: Vec<String> = ids.iter().map(|(k, id)| format!("{k}-{id}")).collect();
        let page = format.browse_page(&root, &parts, &part_ids, key_set.as_deref());
        // Formats whose root file holds no parts keep them in one private
        // object, headed by the state digest it was rendered from.
        let cache = format.caches_parts().then(|| {
            let mut cache = format!("{digest_}\n").into_bytes();
            let start = cache.len() as u64;
            let mut spans = Vec::with_capacity(parts.len());
            for part in &parts {
                spans.push((cache.len() as u64 - start, part.bytes.len() as u64));
                cache.extend_from_slice(&part.bytes);
            }
            rendered.spans = spans;
            cache
        });
        let layout: Vec<PartSpan> = ids
            .into_iter()
            .zip(rendered.spans.iter())
            .map(|((chunk, id), (offset, len))| PartSpan {
                chunk,
                id,
                offset: *offset,
                len: *len,
            })
            .collect();
        let body = rendered.body.clone();
        let (bytes, signed) = match &key {
            Some(key) => (
                format.sign(body, key)?,
                format.signed_files(&root, &rendered, key)?,
            ),
            None => (body, Vec::new()),
        };
        Ok((rendered, bytes, signed, layout, cache, page))
    })
    .await
    .map_err(|e| StorageError::backend("render", &root_key.path(), e))?;
    let (rendered, bytes, signed, layout, cache, page) = rendered?;
    if let Some(cache) = cache {
        stores
            .put(
                &Key::PartsCache(root.clone()),
                cache.into(),
                PutMode::Overwrite,
            )
            .await?;
    }
    // Auxiliary files first, several at a time: the root file is the commit point.
    let aux_written: Vec<(Key, ObjectMeta)> =
        futures::stream::iter(rendered.files.into_iter().chain(signed))
            .map(|(aux, body)| async move {
                let meta = stores.put(&aux, body.into(), PutMode::Overwrite).await?;
                Ok::<_, StorageError>((aux, meta))
            })
            .buffer_unordered(AUX_WRITES)
            .try_collect()
            .await?;
    let written = match stores
        .put(&root_key, bytes.into(), mode_for(base_etag, conditional))
        .await
    {
        Ok(meta) => meta,
        // Another writer's root file won, but the files written above may
        // have landed after its own: they are this call's to put right.
        Err(StorageError::Precondition { .. } | StorageError::AlreadyExists { .. }) => {
            return Ok(Publication::Clobbered);
        }
        Err(e) => return Err(e.into()),
    };
    if !conditional && !companions_intact(stores, &root_key, &written, &aux_written).await? {
        return Ok(Publication::Clobbered);
    }
    // The browse page, from the same parts, once the index it shows is out
    // and before the marker says so: a crash here leaves the marker
    // incomplete and the next publish writes both again.
    if let Some((page_key, html)) = page {
        stores
            .put(&page_key, html.into(), PutMode::Overwrite)
            .await?;
    }
    let done = Marker {
        generation: manifest.generation,
        state_digest: digest,
        index_etag: written.etag,
        complete: true,
        layout,
    };
    match put_marker(stores, root, &done, Some(claimed.etag), conditional).await {
        Ok(_) => Ok(Publication::Wrote),
        // Another writer claimed the marker meanwhile. If it claimed this
        // same state, the root file this call wrote shows it and that
        // writer completes the marker: done. Retrying would take its claim
        // back and fail its write, which would then take it back again:
        // writers of one state would keep stealing each other's claims.
        Err(StorageError::Precondition { .. } | StorageError::AlreadyExists { .. }) => {
            let now = stores.get_bytes_opt(&marker_key).await?;
            let same = now
                .and_then(|(bytes, _)| serde_json::from_slice::<Marker>(&bytes).ok())
                .is_some_and(|m| m.state_digest == done.state_digest);
            Ok(if same {
                Publication::Wrote
            } else {
                Publication::Retry
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Without conditional writes: whether the files this call wrote before its
/// root file are still its own, now that its root file is written. A writer
/// whose root file lost the race (a later one replaced it) has nothing to
/// put right: that later writer checks the same after its own root file.
/// When the root file is still this call's, a companion written by another
/// writer (a detached signature of another `repomd.xml`) landed after this
/// call's: publishing again fixes it. The last writer of the root file thus
/// always leaves its companions matching it.
async fn companions_intact(
    stores: &Stores,
    root_key: &Key,
    written: &ObjectMeta,
    aux: &[(Key, ObjectMeta)],
) -> Result<bool, IndexError> {
    use futures::{StreamExt, TryStreamExt};
    if stores.head(root_key).await?.map(|m| m.etag) != Some(written.etag.clone()) {
        return Ok(true);
    }
    let owned: Vec<(Key, String)> = aux
        .iter()
        .map(|(k, m)| (k.clone(), m.etag.clone()))
        .collect();
    let changed: Vec<bool> = futures::stream::iter(owned)
        .map(|(key, etag)| async move {
            Ok::<_, StorageError>(stores.head(&key).await?.map(|m| m.etag) != Some(etag))
        })
        .buffer_unordered(AUX_WRITES)
        .try_collect()
        .await?;
    Ok(!changed.contains(&true))
}
