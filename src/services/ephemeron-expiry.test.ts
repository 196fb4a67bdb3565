import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FakeClock } from "../testing/fakes.js";
import { ExpiryTimers, MAX_TIMER_MS } from "./ephemeron-expiry.js";

describe("ExpiryTimers", () => {
  it("fires at the expiry, to the millisecond", () => {
    const clock = new FakeClock();
    const fired: [string, number][] = [];
    const timers = new ExpiryTimers(clock, (name) => fired.push([name, clock.now()]));
    const t0 = clock.now();
    timers.set("a", t0 + 60_000);
    clock.advance(59_999);
    assert.deepEqual(fired, []);
    clock.advance(1);
    assert.deepEqual(fired, [["a", t0 + 60_000]]);
    assert.equal(timers.size, 0);
  });

  it("moves the timer when the expiry changes, either way", () => {
    const clock = new FakeClock();
    const fired: number[] = [];
    const timers = new ExpiryTimers(clock, () => fired.push(clock.now()));
    const t0 = clock.now();
    timers.set("a", t0 + 60_000);
    timers.set("a", t0 + 120_000);
    clock.advance(60_000);
    assert.deepEqual(fired, []);
    timers.set("a", t0 + 90_000);
    clock.advance(60_000);
    assert.deepEqual(fired, [t0 + 90_000]);
  });

  it("fires at once for a time already past, and never after cancel", () => {
    const clock = new FakeClock();
    const fired: string[] = [];
    const timers = new ExpiryTimers(clock, (name) => fired.push(name));
    timers.set("past", clock.now() - 5_000);
    timers.set("gone", clock.now() + 1_000);
    timers.cancel("gone");
    clock.advance(0);
    clock.advance(10_000);
    assert.deepEqual(fired, ["past"]);
  });

  it("waits longer than setTimeout's ceiling by re-arming", () => {
    const clock = new FakeClock();
    const delays: number[] = [];
    const setTimer = clock.setTimer.bind(clock);
    clock.setTimer = (fn, delay) => {
      delays.push(delay);
      return setTimer(fn, delay);
    };
    const fired: number[] = [];
    const timers = new ExpiryTimers(clock, () => fired.push(clock.now()));
    const at = clock.now() + 60 * 24 * 3600_000; // 60 days
    timers.set("long", at);
    assert.equal(delays[0], MAX_TIMER_MS);
    clock.advance(MAX_TIMER_MS);
    assert.deepEqual(fired, []);
    clock.advance(at - clock.now());
    assert.deepEqual(fired, [at]);
    assert.ok(delays.every((d) => d <= MAX_TIMER_MS));
  });

  it("clear leaves no timer", () => {
    const clock = new FakeClock();
    const timers = new ExpiryTimers(clock, () => assert.fail("fired"));
    timers.set("a", clock.now() + 1);
    timers.set("b", clock.now() + 2);
    timers.clear();
    clock.advance(10);
    assert.equal(timers.size, 0);
  });
});
