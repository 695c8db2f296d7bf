import { describe, expect, test } from "bun:test";
import { bindAddress } from "./server.ts";

describe("receiver bind address", () => {
  test("the address the SSH connection arrived on, IPv4 and IPv6", () => {
    expect(bindAddress({ SSH_CONNECTION: "10.0.0.5 51234 10.0.0.9 22" })).toBe("10.0.0.9");
    expect(bindAddress({ SSH_CONNECTION: "fe80::1 40000 2001:db8::7 22" })).toBe("2001:db8::7");
  });
  test("loopback without SSH (local destination, --mgmt)", () => {
    expect(bindAddress({})).toBe("127.0.0.1");
    expect(bindAddress({ SSH_CONNECTION: "garbage" })).toBe("127.0.0.1");
  });
});
