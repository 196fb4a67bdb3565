import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ClusterService } from "../service/cluster-service.js";
import { Store } from "../store/store.js";
import { FakeClock, FakeDriver, unlimitedTenant } from "../testing/fakes.js";
import { smtpSink } from "../testing/smtp.js";
import { LifetimeController } from "./lifetime-controller.js";
import { Notifier, type NotifierOptions } from "./notifier.js";

const owner = unlimitedTenant;

describe("notifications through the outbox (fake clock, fake driver, real SMTP)", () => {
  let dir: string;
  let smtp: Awaited<ReturnType<typeof smtpSink>>;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tempkube-notify-"));
    smtp = await smtpSink();
  });
  after(async () => {
    await smtp.close();
    await rm(dir, { recursive: true, force: true });
  });

  function start(store: Store, clock: FakeClock, options: NotifierOptions) {
    const notifier = new Notifier(store, clock, options);
    const controller = new LifetimeController(store, new FakeDriver(), clock, { notifier, options });
    notifier.start();
    controller.start();
    return { notifier, controller, service: new ClusterService(store, controller, new FakeDriver(), clock) };
  }

  async function quiet(c: { controller: LifetimeController; notifier: Notifier }) {
    await c.controller.idle();
    for (let i = 0; i < 50; i++) await new Promise((r) => setTimeout(r, 10));
  }

  it("mails ready, the warning 5 minutes before expiry and the termination, once each, with id and times", async () => {
    const store = await Store.openSqlite(join(dir, "mail.db"));
    const clock = new FakeClock();
    const options = { smtpUrl: smtp.url, warningMs: 5 * 60_000 };
    const c = start(store, clock, options);
    const r = await c.service.create(owner, { ttlMinutes: 30, notificationEmail: "owner@example.com" });
    await quiet(c);
    clock.advance(25 * 60_000 - 1);
    await quiet(c);
    const subjects = () => smtp.mails.filter((m) => m.to === "owner@example.com").map((m) => m.subject);
    assert.deepEqual(subjects(), [`cluster ${r.id} is ready`], "no warning a millisecond early");
    clock.advance(1);
    await quiet(c);
    clock.advance(60_000);
    await quiet(c);
    clock.advance(4 * 60_000);
    await quiet(c);
    const expiresAt = new Date(r.expiresAt).toISOString();
    assert.deepEqual(subjects(), [
      `cluster ${r.id} is ready`,
      `cluster ${r.id} expires at ${expiresAt}`,
      `cluster ${r.id} terminated`,
    ]);
    assert.ok(smtp.mails.every((m) => m.body.includes(r.id)));
    await c.controller.stop();
    await c.notifier.stop();
    await store.close();
  });

  it("keeps undelivered mail across a restart and delivers it once the SMTP server answers", async () => {
    const store = await Store.openSqlite(join(dir, "retry.db"));
    const clock = new FakeClock();
    const down = start(store, clock, { smtpUrl: "smtp://127.0.0.1:9", warningMs: 0 });
    const r = await down.service.create(owner, { ttlMinutes: 30, notificationEmail: "retry@example.com" });
    await quiet(down);
    await down.controller.stop();
    await down.notifier.stop();
    const pending = await store.outbox.list(r.id);
    assert.equal(pending.length, 1);
    assert.equal(pending[0].sentAt, null);
    assert.ok(pending[0].attempts >= 1 && pending[0].lastError);

    const up = start(store, clock, { smtpUrl: smtp.url, warningMs: 0 });
    await quiet(up);
    clock.advance(10 * 60_000);
    await quiet(up);
    assert.deepEqual(
      smtp.mails.filter((m) => m.to === "retry@example.com").map((m) => m.subject),
      [`cluster ${r.id} is ready`],
    );
    assert.ok((await store.outbox.list(r.id))[0].sentAt);
    await up.controller.stop();
    await up.notifier.stop();
    await store.close();
  });
});
