import type { Transaction } from "kysely";
import type { OutgoingNotification } from "../core/notifications.js";
import type { Connection, Database, OutboxRow } from "./schema.js";

/** A notification waiting to go out (or sent). One row per event and channel, ever. */
export interface OutboxMessage extends OutgoingNotification {
  id: number;
  attempts: number;
  nextAttemptAt: number;
  sentAt: number | null;
  lastError: string | null;
}

/** The outbox table: notifications queued with the change that caused them, delivered (and retried) by the notifier. */
export class Outbox {
  constructor(private readonly connection: Connection) {}

  private get db() {
    return this.connection.db;
  }

  /**
   * Queues messages that no change of a cluster causes (an ephemeral service became available or
   * expired: core/service-notifications.ts); a dedupe key queued before is ignored, as with a change's.
   */
  async queue(messages: OutgoingNotification[], now: number): Promise<void> {
    if (messages.length) await this.db.transaction().execute((trx) => queueNotifications(trx, messages, now));
  }

  async due(now: number, limit = 20): Promise<OutboxMessage[]> {
    const rows = await this.db
      .selectFrom("outbox")
      .selectAll()
      .where("sent_at", "is", null)
      .where("next_attempt_at", "<=", now)
      .orderBy("id")
      .limit(limit)
      .execute();
    return rows.map(fromOutboxRow);
  }

  async nextDue(): Promise<number | undefined> {
    const row = await this.db
      .selectFrom("outbox")
      .select((eb) => eb.fn.min("next_attempt_at").as("next"))
      .where("sent_at", "is", null)
      .executeTakeFirst();
    return row?.next === null || row?.next === undefined ? undefined : Number(row.next);
  }

  async markSent(id: number, now: number): Promise<void> {
    await this.db.updateTable("outbox").set({ sent_at: now, last_error: null }).where("id", "=", id).execute();
  }

  async markFailed(id: number, error: string, attempts: number, nextAttemptAt: number): Promise<void> {
    await this.db
      .updateTable("outbox")
      .set({ attempts, last_error: error, next_attempt_at: nextAttemptAt })
      .where("id", "=", id)
      .execute();
  }

  /** Every message, sent or not, oldest first; optionally one cluster's. */
  async list(clusterId?: string): Promise<OutboxMessage[]> {
    let q = this.db.selectFrom("outbox").selectAll().orderBy("id");
    if (clusterId) q = q.where("cluster_id", "=", clusterId);
    return (await q.execute()).map(fromOutboxRow);
  }
}

/** Queues messages inside the caller's transaction; a dedupe key queued before is ignored, so an event is never queued twice. */
export async function queueNotifications(
  trx: Transaction<Database>,
  messages: OutgoingNotification[],
  now: number,
): Promise<void> {
  for (const m of messages) {
    await trx
      .insertInto("outbox")
      .values({
        dedupe_key: m.dedupeKey,
        cluster_id: m.clusterId,
        event: m.event,
        channel: m.channel,
        recipient: m.recipient,
        payload: JSON.stringify(m.payload),
        attempts: 0,
        next_attempt_at: now,
        sent_at: null,
        last_error: null,
        created_at: now,
      })
      .onConflict((oc) => oc.column("dedupe_key").doNothing())
      .execute();
  }
}

function fromOutboxRow(row: Omit<OutboxRow, "id"> & { id: number }): OutboxMessage {
  return {
    id: Number(row.id),
    dedupeKey: row.dedupe_key,
    clusterId: row.cluster_id,
    event: row.event as OutboxMessage["event"],
    channel: row.channel as OutboxMessage["channel"],
    recipient: row.recipient,
    payload: JSON.parse(row.payload) as Record<string, unknown>,
    attempts: Number(row.attempts),
    nextAttemptAt: Number(row.next_attempt_at),
    sentAt: row.sent_at === null ? null : Number(row.sent_at),
    lastError: row.last_error,
  };
}
