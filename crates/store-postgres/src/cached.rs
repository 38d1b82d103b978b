//! Statements diesel would prepare again on every execution, kept in the connection's
//! statement cache instead: one round trip per execution rather than two.
//!
//! diesel 2.2 marks every `UPDATE` and every `ON CONFLICT … DO UPDATE` unsafe to cache
//! (a changeset of `Option`s can change the SQL from one call to the next), so each one
//! costs a Parse/Describe round trip before it runs — on every write of the hot paths
//! (an enrollment's use, a share link's access count, a claim, a rate-limit lease).
//! [`Cached`] declares the statement safe, which is sound whatever the statement: it
//! gives no static query id, so the cache key is the SQL text and the bind types
//! themselves, and a statement whose SQL did vary gets one entry per variant, never a
//! wrong one (the variants of a changeset are few and fixed by its type).

use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};

/// A statement that is prepared once per connection and then reused.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cached<Q>(Q);

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Cached<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q> QueryId for Cached<Q> {
    type QueryId = ();
    // Keyed by its SQL text, never by its type (see the module's docs).
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Cached<Q> {
    type SqlType = Q::SqlType;
}

/// `.cached()` on any statement.
pub(crate) trait CachedExt: Sized {
    /// Keeps this statement in the connection's statement cache (see [`Cached`]).
    fn cached(self) -> Cached<Self> {
        Cached(self)
    }
}

impl<Q: QueryFragment<Pg>> CachedExt for Q {}

#[cfg(test)]
mod tests {
    use diesel::{ExpressionMethods as _, QueryableByName};
    use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};

    use super::CachedExt as _;

    diesel::table! {
        counters (id) {
            id -> Int4,
            hits -> Int8,
        }
    }

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }

    /// How many statements prepared on this connection update `counters`.
    async fn prepared(conn: &mut AsyncPgConnection) -> i64 {
        diesel::sql_query(
            "SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE 'UPDATE \"counters\"%'",
        )
        .get_result::<Count>(conn)
        .await
        .expect("count prepared statements")
        .n
    }

    #[tokio::test]
    async fn a_cached_update_stays_prepared_and_an_uncached_one_does_not() {
        let url = crate::testing::server_url();
        let mut conn = AsyncPgConnection::establish(&url)
            .await
            .expect("PostgreSQL on the test server");
        diesel::sql_query("CREATE TEMP TABLE counters (id int PRIMARY KEY, hits bigint NOT NULL)")
            .execute(&mut conn)
            .await
            .expect("temp table");
        let bump = || diesel::update(counters::table).set(counters::hits.eq(counters::hits + 1));
        for _ in 0..3 {
            bump().execute(&mut conn).await.expect("uncached update");
        }
        assert_eq!(
            prepared(&mut conn).await,
            0,
            "diesel prepares an UPDATE afresh every time (and closes it): the reason for Cached"
        );
        for _ in 0..3 {
            bump()
                .cached()
                .execute(&mut conn)
                .await
                .expect("cached update");
        }
        assert_eq!(prepared(&mut conn).await, 1, "prepared once, kept");
    }
}
