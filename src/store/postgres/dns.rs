//! The PostgreSQL side of the DNS answer cache (see [`crate::store::dns_cache`]).

use std::net::IpAddr;

use super::PgTx;
use crate::dns::{Forward, ZoneAnswer};
use crate::store::StoreError;
use crate::store::dns_cache::{self, DNS_CACHE_SECONDS, KIND_FORWARD, KIND_ZONE};

impl PgTx<'_> {
    /// One live row's answer, if any.
    fn cached(
        &mut self,
        address: &str,
        kind: &str,
        name: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        let rows = self.query(
            "SELECT answer FROM gl_dns_cache
             WHERE address = $1 AND kind = $2 AND name = $3 AND expires > $4",
            &[&address, &kind, &name, &now],
        )?;
        Ok(rows.first().map(|row| row.get(0)))
    }

    /// Inserts or replaces one row, live until `now` + [`DNS_CACHE_SECONDS`].
    fn cache(
        &mut self,
        address: &str,
        kind: &str,
        name: &str,
        answer: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let expires = now.saturating_add(DNS_CACHE_SECONDS);
        self.execute(
            "INSERT INTO gl_dns_cache (address, kind, name, answer, expires)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (address, kind, name)
             DO UPDATE SET answer = EXCLUDED.answer, expires = EXCLUDED.expires",
            &[&address, &kind, &name, &answer, &expires],
        )
        .map(|_| ())
    }

    pub(super) fn zone_answers(
        &mut self,
        ip: IpAddr,
        zones: &[String],
        now: i64,
    ) -> Result<Vec<ZoneAnswer>, StoreError> {
        let address = dns_cache::address_key(ip);
        let mut answers = Vec::new();
        for zone in zones {
            let zone = dns_cache::zone_key(zone);
            if let Some(answer) = self.cached(&address, KIND_ZONE, &zone, now)?
                && let Some(answer) = dns_cache::decode_zone(zone, &answer)
            {
                answers.push(answer);
            }
        }
        Ok(answers)
    }

    pub(super) fn put_zone_answers(
        &mut self,
        ip: IpAddr,
        answers: &[ZoneAnswer],
        now: i64,
    ) -> Result<(), StoreError> {
        let address = dns_cache::address_key(ip);
        for answer in answers {
            if let Some(text) = dns_cache::encode_zone(answer.result) {
                let zone = dns_cache::zone_key(&answer.zone);
                self.cache(&address, KIND_ZONE, &zone, &text, now)?;
            }
        }
        Ok(())
    }

    pub(super) fn forward_answer(
        &mut self,
        ip: IpAddr,
        name: &str,
        now: i64,
    ) -> Result<Option<Forward>, StoreError> {
        let answer = self.cached(
            &dns_cache::address_key(ip),
            KIND_FORWARD,
            &dns_cache::name_key(name),
            now,
        )?;
        Ok(answer.as_deref().and_then(dns_cache::decode_forward))
    }

    pub(super) fn put_forward_answer(
        &mut self,
        ip: IpAddr,
        name: &str,
        forward: Forward,
        now: i64,
    ) -> Result<(), StoreError> {
        let Some(text) = dns_cache::encode_forward(forward) else {
            return Ok(());
        };
        self.cache(
            &dns_cache::address_key(ip),
            KIND_FORWARD,
            &dns_cache::name_key(name),
            text,
            now,
        )
    }

    /// Deletes expired cache rows, at most `limit` when given (skipping rows another
    /// transaction holds, as the bounded triplet purge does).
    pub(super) fn purge_dns_cache(
        &mut self,
        now: i64,
        limit: Option<u64>,
    ) -> Result<(), StoreError> {
        match limit {
            None => self.execute("DELETE FROM gl_dns_cache WHERE expires <= $1", &[&now]),
            Some(limit) => {
                let limit = limit.min(i64::MAX as u64) as i64;
                self.execute(
                    "DELETE FROM gl_dns_cache WHERE (address, kind, name) IN
                     (SELECT address, kind, name FROM gl_dns_cache WHERE expires <= $1
                      LIMIT $2 FOR UPDATE SKIP LOCKED)",
                    &[&now, &limit],
                )
            }
        }
        .map(|_| ())
    }
}
