import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { run, succeeds, type RunOptions } from "../util/exec.js";

/**
 * "Another machine" for tests that act as a remote user: a network namespace of the test's
 * own, joined to the host by a veth, with an address of its own and a default route to the
 * host, and no other way into the host's bridges (DESIGN.md: tests only send traffic to
 * loopback or to namespaces they made). The host's end address is what a server would
 * call its public address.
 */
export class OtherMachine {
  private constructor(
    readonly netns: string,
    private readonly hostVeth: string,
    /** The host's address as the other machine sees it. */
    readonly hostAddress: string,
    /** The other machine's own address. */
    readonly address: string,
  ) {}

  /** subnet: the first three octets of a /24 of the test's, e.g. "198.51.100". */
  static async create(name: string, subnet: string): Promise<OtherMachine> {
    const m = new OtherMachine(`tkt-${name}`, `tkt-${name}0`, `${subnet}.1`, `${subnet}.10`);
    await m.remove();
    await run("ip", ["netns", "add", m.netns]);
    await run("ip", ["link", "add", m.hostVeth, "type", "veth", "peer", "name", "eth0", "netns", m.netns]);
    await run("ip", ["addr", "add", `${m.hostAddress}/24`, "dev", m.hostVeth]);
    await run("ip", ["link", "set", m.hostVeth, "up"]);
    await run("ip", ["-n", m.netns, "addr", "add", `${m.address}/24`, "dev", "eth0"]);
    await run("ip", ["-n", m.netns, "link", "set", "eth0", "up"]);
    await run("ip", ["-n", m.netns, "link", "set", "lo", "up"]);
    await run("ip", ["-n", m.netns, "route", "add", "default", "via", m.hostAddress]);
    return m;
  }

  /** Runs a command on the other machine (in its network namespace; same files as the host). */
  exec(command: string, args: string[], options: RunOptions = {}) {
    return run("nsenter", [`--net=/run/netns/${this.netns}`, "--", command, ...args], options);
  }

  spawn(command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    return spawn("nsenter", [`--net=/run/netns/${this.netns}`, "--", command, ...args], options);
  }

  /** Nothing of it left: the namespace (and with it the veth's peer) and the host's end. */
  async remove(): Promise<void> {
    await succeeds("ip", ["netns", "del", this.netns]);
    await succeeds("ip", ["link", "del", this.hostVeth]);
  }
}
