// Clients of the transfer example for the saga chaos run: gRPC clients of Account and
// Transfer built from modules/transfer/proto (as an outside client would build them), that
// follow the node across a restart (its gRPC port changes), and the reading of an account's
// journal through the admin inspection API.
import { join } from "node:path";
import { accountEventFromInspect, type AccountEvent } from "./saga-checker.js";
import { contractClient, type ContractClient } from "./grpc-client.js";
import { REPO_ROOT } from "./node-process.js";

export const ACCOUNT_SERVICE = "keystate.examples.transfer.Account";
export const TRANSFER_SERVICE = "keystate.examples.transfer.Transfer";
export const TRANSFER_PROTO_DIR = join(REPO_ROOT, "modules", "transfer", "proto");

/** TransferStatus by number (proto-loader hands enums over as numbers unless asked otherwise). */
const TRANSFER_STATUS = ["TRANSFER_STATUS_UNSPECIFIED", "WITHDRAWING", "DEPOSITING", "CANCELLING_DEPOSIT", "REFUNDING", "COMPLETED", "COMPENSATED", "FAILED"];

export interface SagaNode {
  readonly grpcPort: number;
  readonly adminUrl: string;
  readonly token: string;
}

export interface TransferView {
  readonly status: string;
  readonly history: string[];
}

export class SagaClients {
  #port = -1;
  #account: ContractClient | undefined;
  #transfer: ContractClient | undefined;
  #closed = false;

  /** `node()`: the node to call now (undefined while it is down: calls then fail at once). */
  constructor(private readonly node: () => SagaNode | undefined) {}

  /** Calls Account/`method`; rejects with the gRPC error (or "no node"). */
  account(method: string, request: object, deadlineMs = 5_000): Promise<any> {
    return this.#clients().account.methods[method]!(request, { deadlineMs });
  }

  transfer(method: string, request: object, deadlineMs = 5_000): Promise<any> {
    return this.#clients().transfer.methods[method]!(request, { deadlineMs });
  }

  async getTransfer(id: string, deadlineMs = 5_000): Promise<TransferView> {
    const reply = await this.transfer("GetTransfer", { transferId: id }, deadlineMs);
    return { status: statusName(reply.status), history: reply.history ?? [] };
  }

  /** Closes the clients; calls after it fail at once. */
  close(): void {
    this.#closed = true;
    this.#drop();
  }

  #drop(): void {
    this.#account?.close();
    this.#transfer?.close();
    this.#account = this.#transfer = undefined;
    this.#port = -1;
  }

  #clients(): { account: ContractClient; transfer: ContractClient } {
    const node = this.node();
    if (this.#closed) throw new Error("the saga clients are closed");
    if (node === undefined) throw new Error("no node is up");
    if (node.grpcPort !== this.#port || !this.#account || !this.#transfer) {
      this.#drop();
      this.#account = contractClient(TRANSFER_PROTO_DIR, "account.proto", ACCOUNT_SERVICE, node.grpcPort);
      this.#transfer = contractClient(TRANSFER_PROTO_DIR, "transfer.proto", TRANSFER_SERVICE, node.grpcPort);
      this.#port = node.grpcPort;
    }
    return { account: this.#account, transfer: this.#transfer };
  }
}

export function statusName(status: unknown): string {
  if (typeof status === "string") return status;
  if (typeof status === "number") return TRANSFER_STATUS[status] ?? `status ${status}`;
  return "";
}

/** Every event of an account's journal, paged through GET /entities/<Account>/<id>/events. */
export async function readAccountJournal(node: SagaNode, accountId: string): Promise<AccountEvent[]> {
  const events: AccountEvent[] = [];
  for (let from = 1; ; ) {
    const url = `${node.adminUrl}/entities/${encodeURIComponent(ACCOUNT_SERVICE)}/${encodeURIComponent(accountId)}/events?from=${from}&limit=500`;
    const response = await fetch(url, { headers: { authorization: `Bearer ${node.token}` } });
    const body = (await response.json()) as { events?: { seq: number; type: string; payload?: Record<string, unknown> }[]; more?: boolean; error?: unknown };
    if (response.status !== 200 || !Array.isArray(body.events)) throw new Error(`GET ${url} answered ${response.status}: ${JSON.stringify(body)}`);
    for (const raw of body.events) events.push(accountEventFromInspect(raw));
    if (!body.more || body.events.length === 0) return events;
    from = body.events[body.events.length - 1]!.seq + 1;
  }
}
