//! Offices, their members (officials) and the services they offer.

use std::collections::{BTreeSet, HashMap};

use sqlx::Row;

use crate::rows::{self, OFFICE_COLS, SERVICE_COLS, USER_COLS, new_id};
use crate::{NewOffice, NewService, Office, Result, Service, Store, StoreError, User, is_foreign_key_violation};

/// Sorted and without duplicates, so that what `create_service` returns equals what `service` reads.
fn id_set(ids: &[String]) -> Vec<String> {
    ids.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect()
}

/// An unknown id in a link table surfaces as a foreign-key violation.
fn link_error(e: sqlx::Error) -> StoreError {
    if is_foreign_key_violation(&e) { StoreError::NotFound } else { e.into() }
}

/// `desk_hours` of an office without a video desk (the column's default).
pub const NO_DESK: &str = "[[],[],[],[],[],[],[]]";

impl Store {
    pub async fn create_office(&self, new: &NewOffice, now: i64) -> Result<Office> {
        let office = Office {
            id: new_id(),
            name: new.name.clone(),
            description: new.description.clone(),
            address: new.address.clone(),
            email: new.email.clone(),
            phone: new.phone.clone(),
            opening_hours: new.opening_hours.clone(),
            desk_hours: NO_DESK.to_owned(),
            created_at: now,
        };
        let o = &office;
        self.retrying("create_office", || async move {
            sqlx::query(
                "INSERT INTO offices (id, name, description, address, email, phone, opening_hours, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&o.id)
            .bind(&o.name)
            .bind(&o.description)
            .bind(&o.address)
            .bind(&o.email)
            .bind(&o.phone)
            .bind(&o.opening_hours)
            .bind(o.created_at)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
        .await?;
        Ok(office)
    }

    /// `NotFound` if absent.
    pub async fn update_office(&self, id: &str, new: &NewOffice) -> Result<Office> {
        let changed = self
            .retrying("update_office", || async move {
                Ok(sqlx::query(
                    "UPDATE offices SET name = $1, description = $2, address = $3, email = $4, phone = $5, \
                     opening_hours = $6 WHERE id = $7",
                )
                .bind(&new.name)
                .bind(&new.description)
                .bind(&new.address)
                .bind(&new.email)
                .bind(&new.phone)
                .bind(&new.opening_hours)
                .bind(id)
                .execute(&self.pool)
                .await?
                .rows_affected())
            })
            .await?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        self.office(id).await?.ok_or(StoreError::NotFound)
    }

    /// `Conflict("appointments")` while appointments reference it; `NotFound` if absent. Its
    /// memberships and service links go with it.
    pub async fn delete_office(&self, id: &str) -> Result<()> {
        self.retrying("delete_office", || self.delete_referenced("offices", "office_id", id)).await
    }

    pub async fn office(&self, id: &str) -> Result<Option<Office>> {
        let sql = format!("SELECT {OFFICE_COLS} FROM offices WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(rows::office).transpose()
    }

    /// All offices, by name.
    pub async fn offices(&self) -> Result<Vec<Office>> {
        let sql = format!("SELECT {OFFICE_COLS} FROM offices ORDER BY name, id");
        sqlx::query(&sql).fetch_all(&self.pool).await?.iter().map(rows::office).collect()
    }

    /// Replaces the office's members (officials who work there). `NotFound` if the office or one
    /// of the users does not exist (nothing changes then).
    pub async fn set_office_members(&self, office_id: &str, user_ids: &[String]) -> Result<()> {
        let user_ids = &id_set(user_ids);
        self.retrying("set_office_members", || async move {
            let mut tx = self.begin().await?;
            // Written first, so the office check below reads under the write lock.
            sqlx::query("DELETE FROM office_members WHERE office_id = $1").bind(office_id).execute(&mut *tx).await?;
            let exists: i64 = sqlx::query("SELECT COUNT(*) AS n FROM offices WHERE id = $1")
                .bind(office_id)
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
            if exists == 0 {
                return Err(StoreError::NotFound);
            }
            for user_id in user_ids {
                sqlx::query("INSERT INTO office_members (office_id, user_id) VALUES ($1, $2)")
                    .bind(office_id)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(link_error)?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// The office's members, by display name.
    pub async fn office_members(&self, office_id: &str) -> Result<Vec<User>> {
        let cols = USER_COLS.split(", ").map(|c| format!("u.{c}")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT {cols} FROM users u JOIN office_members m ON m.user_id = u.id WHERE m.office_id = $1 \
             ORDER BY u.display_name, u.email"
        );
        sqlx::query(&sql).bind(office_id).fetch_all(&self.pool).await?.iter().map(rows::user).collect()
    }

    /// The offices the user is a member of, by name.
    pub async fn offices_of_user(&self, user_id: &str) -> Result<Vec<Office>> {
        let cols = OFFICE_COLS.split(", ").map(|c| format!("o.{c}")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT {cols} FROM offices o JOIN office_members m ON m.office_id = o.id WHERE m.user_id = $1 \
             ORDER BY o.name, o.id"
        );
        sqlx::query(&sql).bind(user_id).fetch_all(&self.pool).await?.iter().map(rows::office).collect()
    }

    /// Creates the service and links it to `new.office_ids` (returned sorted, without duplicates).
    /// `NotFound` if one of the offices does not exist.
    pub async fn create_service(&self, new: &NewService, now: i64) -> Result<Service> {
        let service = Service {
            id: new_id(),
            name: new.name.clone(),
            description: new.description.clone(),
            duration_minutes: new.duration_minutes,
            what_to_bring: new.what_to_bring.clone(),
            modes: new.modes,
            office_ids: id_set(&new.office_ids),
            created_at: now,
        };
        let s = &service;
        self.retrying("create_service", || async move {
            let mut tx = self.begin().await?;
            sqlx::query(
                "INSERT INTO services (id, name, description, duration_minutes, what_to_bring, modes, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&s.id)
            .bind(&s.name)
            .bind(&s.description)
            .bind(s.duration_minutes)
            .bind(&s.what_to_bring)
            .bind(s.modes.as_str())
            .bind(s.created_at)
            .execute(&mut *tx)
            .await?;
            link_offices(&mut tx, &s.id, &s.office_ids).await?;
            tx.commit().await?;
            Ok(())
        })
        .await?;
        Ok(service)
    }

    /// Updates the service and replaces its office links. `NotFound` if it (or an office) is absent.
    pub async fn update_service(&self, id: &str, new: &NewService) -> Result<Service> {
        let office_ids = &id_set(&new.office_ids);
        self.retrying("update_service", || async move {
            let mut tx = self.begin().await?;
            let changed = sqlx::query(
                "UPDATE services SET name = $1, description = $2, duration_minutes = $3, what_to_bring = $4, \
                 modes = $5 WHERE id = $6",
            )
            .bind(&new.name)
            .bind(&new.description)
            .bind(new.duration_minutes)
            .bind(&new.what_to_bring)
            .bind(new.modes.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query("DELETE FROM office_services WHERE service_id = $1").bind(id).execute(&mut *tx).await?;
            link_offices(&mut tx, id, office_ids).await?;
            tx.commit().await?;
            Ok(())
        })
        .await?;
        self.service(id).await?.ok_or(StoreError::NotFound)
    }

    /// `Conflict("appointments")` while appointments reference it; `NotFound` if absent.
    pub async fn delete_service(&self, id: &str) -> Result<()> {
        self.retrying("delete_service", || self.delete_referenced("services", "service_id", id)).await
    }

    pub async fn service(&self, id: &str) -> Result<Option<Service>> {
        let sql = format!("SELECT {SERVICE_COLS} FROM services WHERE id = $1");
        let Some(row) = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await? else { return Ok(None) };
        let mut service = rows::service(&row)?;
        service.office_ids =
            sqlx::query("SELECT office_id FROM office_services WHERE service_id = $1 ORDER BY office_id")
                .bind(id)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| r.try_get("office_id"))
                .collect::<Result<_, _>>()?;
        Ok(Some(service))
    }

    /// All services, by name, each with its `office_ids`.
    pub async fn services(&self) -> Result<Vec<Service>> {
        let sql = format!("SELECT {SERVICE_COLS} FROM services ORDER BY name, id");
        let mut services: Vec<Service> =
            sqlx::query(&sql).fetch_all(&self.pool).await?.iter().map(rows::service).collect::<Result<_>>()?;
        let mut links: HashMap<String, Vec<String>> = HashMap::new();
        for row in sqlx::query("SELECT service_id, office_id FROM office_services ORDER BY office_id")
            .fetch_all(&self.pool)
            .await?
        {
            links.entry(row.try_get("service_id")?).or_default().push(row.try_get("office_id")?);
        }
        for service in &mut services {
            service.office_ids = links.remove(&service.id).unwrap_or_default();
        }
        Ok(services)
    }

    /// Deletes the row of `table` unless appointments reference it through `column`.
    async fn delete_referenced(&self, table: &'static str, column: &'static str, id: &str) -> Result<()> {
        // The NOT EXISTS makes the common case one statement; the foreign key still catches an
        // appointment booked concurrently.
        let sql = format!(
            "DELETE FROM {table} WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM appointments WHERE {column} = $1)"
        );
        let deleted =
            sqlx::query(&sql).bind(id).execute(&self.pool).await.map_err(|e| {
                if is_foreign_key_violation(&e) { StoreError::Conflict("appointments") } else { e.into() }
            })?;
        if deleted.rows_affected() == 1 {
            return Ok(());
        }
        let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE id = $1");
        let exists: i64 = sqlx::query(&sql).bind(id).fetch_one(&self.pool).await?.try_get("n")?;
        Err(if exists == 0 { StoreError::NotFound } else { StoreError::Conflict("appointments") })
    }
}

async fn link_offices(tx: &mut sqlx::AnyConnection, service_id: &str, office_ids: &[String]) -> Result<()> {
    if office_ids.is_empty() {
        return Ok(());
    }
    let values = (0..office_ids.len()).map(|i| format!("(${}, $1)", i + 2)).collect::<Vec<_>>().join(", ");
    let sql = format!("INSERT INTO office_services (office_id, service_id) VALUES {values}");
    let mut query = sqlx::query(&sql).bind(service_id);
    for office_id in office_ids {
        query = query.bind(office_id);
    }
    query.execute(&mut *tx).await.map_err(link_error)?;
    Ok(())
}
