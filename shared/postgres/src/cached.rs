//! Statements through the connection's prepared-statement cache. A statement given as text
//! costs tokio-postgres a prepare round trip and PostgreSQL a parse and plan on every call;
//! cached, it is prepared once per connection and then costs one round trip. Hot paths (a
//! statement run per message) use these.

use std::future::Future;

use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Error, Row};

/// The parameters of a statement.
type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// `execute`, `query`, `query_opt` and `query_one` with the statement prepared once per
/// connection (for a pooled client or a transaction).
pub trait CachedStatements: GenericClient {
    /// Runs `sql`; the number of rows it changed.
    fn execute_cached<'a>(
        &'a self,
        sql: &'a str,
        params: Params<'a>,
    ) -> impl Future<Output = Result<u64, Error>> + Send + 'a
    where
        Self: Sized,
    {
        async move {
            let statement = self.prepare_cached(sql).await?;
            self.execute(&statement, params).await
        }
    }

    /// Runs `sql`; every row.
    fn query_cached<'a>(
        &'a self,
        sql: &'a str,
        params: Params<'a>,
    ) -> impl Future<Output = Result<Vec<Row>, Error>> + Send + 'a
    where
        Self: Sized,
    {
        async move {
            let statement = self.prepare_cached(sql).await?;
            self.query(&statement, params).await
        }
    }

    /// Runs `sql`; at most one row.
    fn query_opt_cached<'a>(
        &'a self,
        sql: &'a str,
        params: Params<'a>,
    ) -> impl Future<Output = Result<Option<Row>, Error>> + Send + 'a
    where
        Self: Sized,
    {
        async move {
            let statement = self.prepare_cached(sql).await?;
            self.query_opt(&statement, params).await
        }
    }

    /// Runs `sql`; exactly one row.
    fn query_one_cached<'a>(
        &'a self,
        sql: &'a str,
        params: Params<'a>,
    ) -> impl Future<Output = Result<Row, Error>> + Send + 'a
    where
        Self: Sized,
    {
        async move {
            let statement = self.prepare_cached(sql).await?;
            self.query_one(&statement, params).await
        }
    }
}

impl<T: GenericClient> CachedStatements for T {}
