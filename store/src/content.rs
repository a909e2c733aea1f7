//! Documents and chat messages shared in a room, with their retention.

use crate::rows::{self, DOCUMENT_COLS, new_sortable_id};
use crate::{ChatMessage, Document, NewChat, NewDocument, Result, Store, StoreError, is_unique_violation};

use sqlx::Row;

impl Store {
    /// `Conflict("document")` if the id exists.
    pub async fn add_document(&self, new: &NewDocument, now: i64) -> Result<Document> {
        self.retrying("add_document", || async move {
            sqlx::query(
                "INSERT INTO documents (id, room, appointment_id, uploader, uploader_name, file_name, content_type, \
                 size, sha256, created_at, delete_after) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(&new.id)
            .bind(&new.room)
            .bind(new.appointment_id.as_deref())
            .bind(&new.uploader)
            .bind(&new.uploader_name)
            .bind(&new.file_name)
            .bind(&new.content_type)
            .bind(new.size)
            .bind(&new.sha256)
            .bind(now)
            .bind(new.delete_after)
            .execute(&self.pool)
            .await
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("document") } else { e.into() })?;
            Ok(())
        })
        .await?;
        Ok(Document {
            id: new.id.clone(),
            room: new.room.clone(),
            appointment_id: new.appointment_id.clone(),
            uploader: new.uploader.clone(),
            uploader_name: new.uploader_name.clone(),
            file_name: new.file_name.clone(),
            content_type: new.content_type.clone(),
            size: new.size,
            sha256: new.sha256.clone(),
            created_at: now,
            delete_after: new.delete_after,
        })
    }

    pub async fn document(&self, id: &str) -> Result<Option<Document>> {
        let sql = format!("SELECT {DOCUMENT_COLS} FROM documents WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(rows::document).transpose()
    }

    /// A room's documents, oldest first.
    pub async fn documents(&self, room: &str) -> Result<Vec<Document>> {
        let sql = format!("SELECT {DOCUMENT_COLS} FROM documents WHERE room = $1 ORDER BY created_at, id");
        sqlx::query(&sql).bind(room).fetch_all(&self.pool).await?.iter().map(rows::document).collect()
    }

    /// Documents whose retention ended (`delete_after <= now`); the caller deletes the bytes, then
    /// the rows with [`Store::delete_document`].
    pub async fn expired_documents(&self, now: i64) -> Result<Vec<Document>> {
        let sql = format!("SELECT {DOCUMENT_COLS} FROM documents WHERE delete_after <= $1 ORDER BY delete_after, id");
        sqlx::query(&sql).bind(now).fetch_all(&self.pool).await?.iter().map(rows::document).collect()
    }

    /// Deleting a document that is already gone is not an error (retention sweeps may overlap).
    pub async fn delete_document(&self, id: &str) -> Result<()> {
        self.retrying("delete_document", || async move {
            sqlx::query("DELETE FROM documents WHERE id = $1").bind(id).execute(&self.pool).await?;
            Ok(())
        })
        .await
    }

    pub async fn add_chat(&self, new: &NewChat, now: i64) -> Result<ChatMessage> {
        // Sortable: messages of the same second keep their order (see `new_sortable_id`).
        let id = &new_sortable_id();
        self.retrying("add_chat", || async move {
            let mut tx = self.begin().await?;
            sqlx::query(
                "INSERT INTO chat_messages (id, room, appointment_id, sender, sender_name, body, created_at, \
                 delete_after) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(id)
            .bind(&new.room)
            .bind(new.appointment_id.as_deref())
            .bind(&new.sender)
            .bind(&new.sender_name)
            .bind(&new.body)
            .bind(now)
            .bind(new.delete_after)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await?;
        Ok(ChatMessage {
            id: id.clone(),
            room: new.room.clone(),
            appointment_id: new.appointment_id.clone(),
            sender: new.sender.clone(),
            sender_name: new.sender_name.clone(),
            body: new.body.clone(),
            created_at: now,
        })
    }

    /// A room's messages, oldest first, at most `limit` (the newest ones).
    pub async fn chat(&self, room: &str, limit: i64) -> Result<Vec<ChatMessage>> {
        let rows = sqlx::query(
            "SELECT id, room, appointment_id, sender, sender_name, body, created_at FROM (\
             SELECT id, room, appointment_id, sender, sender_name, body, created_at FROM chat_messages \
             WHERE room = $1 ORDER BY created_at DESC, id DESC LIMIT $2) newest ORDER BY created_at, id",
        )
        .bind(room)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ChatMessage {
                    id: r.try_get("id")?,
                    room: r.try_get("room")?,
                    appointment_id: r.try_get("appointment_id")?,
                    sender: r.try_get("sender")?,
                    sender_name: r.try_get("sender_name")?,
                    body: r.try_get("body")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Deletes messages whose retention ended (`delete_after <= now`); returns how many.
    pub async fn delete_expired_chat(&self, now: i64) -> Result<u64> {
        self.retrying("delete_expired_chat", || async move {
            Ok(sqlx::query("DELETE FROM chat_messages WHERE delete_after <= $1")
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected())
        })
        .await
    }
}
