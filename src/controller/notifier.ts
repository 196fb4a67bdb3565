import nodemailer, { type Transporter } from "nodemailer";
import type { Clock } from "../core/clock.js";
import type { NotificationPolicy } from "../core/notifications.js";
import type { OutboxMessage, Store } from "../store/store.js";
import { redactSecrets } from "../util/errors.js";
import { CoalescingTask } from "../util/coalescing-task.js";
import { logger } from "../util/log.js";

/** Delivery settings (SMTP, sender) besides the policy of who is told what (core/notifications.ts). */
export interface NotifierOptions extends NotificationPolicy {
  /** smtp://user:pass@host:587 (nodemailer URL; smtps:// for TLS). No email without it. */
  smtpUrl?: string;
  from?: string;
}

const MAX_BACKOFF_MS = 10 * 60_000;

/**
 * Delivers the outbox: due messages are sent, failures retried with exponential backoff,
 * sent ones marked. Rows survive restarts; a timer waits for the next due row (no polling).
 */
export class Notifier {
  private readonly mailer?: Transporter;
  private timer: unknown;
  private readonly runs = new CoalescingTask(
    () => this.deliver(),
    (err) => logger.error({ err }, "outbox delivery failed"),
  );
  private stopped = false;
  /** Called after each delivery attempt (metrics). */
  onAttempt: (ok: boolean) => void = () => undefined;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly options: NotifierOptions,
  ) {
    if (options.smtpUrl) this.mailer = nodemailer.createTransport(options.smtpUrl);
  }

  start(): void {
    this.stopped = false;
    this.runs.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.runs.stop();
    if (this.timer) this.clock.clearTimer(this.timer);
    this.mailer?.close();
  }

  trigger(): void {
    this.runs.trigger();
  }

  private async deliver(): Promise<void> {
    for (;;) {
      const due = await this.store.outbox.due(this.clock.now());
      if (due.length === 0) break;
      for (const m of due) await this.deliverOne(m);
    }
    if (this.timer) this.clock.clearTimer(this.timer);
    const next = await this.store.outbox.nextDue();
    if (next !== undefined && !this.stopped)
      this.timer = this.clock.setTimer(() => this.trigger(), next - this.clock.now());
  }

  private async deliverOne(m: OutboxMessage): Promise<void> {
    try {
      if (m.channel === "email") await this.sendEmail(m);
      else await this.sendWebhook(m);
      await this.store.outbox.markSent(m.id, this.clock.now());
      this.onAttempt(true);
    } catch (err) {
      const attempts = m.attempts + 1;
      const backoff = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** attempts);
      const message = redactSecrets((err as Error).message ?? String(err));
      logger.warn(
        { clusterId: m.clusterId, event: m.event, channel: m.channel, attempts, err: message },
        "notification not delivered; will retry",
      );
      await this.store.outbox.markFailed(m.id, message, attempts, this.clock.now() + backoff);
      this.onAttempt(false);
    }
  }

  private async sendEmail(m: OutboxMessage): Promise<void> {
    if (!this.mailer) throw new Error("no SMTP server configured (--smtp-url or TEMPKUBE_SMTP_URL)");
    await this.mailer.sendMail({
      from: this.options.from ?? "tempkube <tempkube@localhost>",
      to: m.recipient,
      subject: String(m.payload.subject),
      text: String(m.payload.text),
      // Receivers can drop a duplicate that a crash between send and mark could cause.
      messageId: `<${m.dedupeKey.replace(/[^A-Za-z0-9.:-]/g, ".")}@tempkube>`,
    });
  }

  private async sendWebhook(m: OutboxMessage): Promise<void> {
    const res = await fetch(m.recipient, {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": m.dedupeKey },
      body: JSON.stringify(m.payload),
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok) throw new Error(`webhook answered HTTP ${res.status}`);
  }
}
