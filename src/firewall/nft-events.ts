/**
 * Which nftables transactions touched cnm's tables, from the events of NFNLGRP_NFTABLES (pure).
 *
 * The kernel reports a committed transaction as one message per object it created or deleted (table,
 * chain, rule, set, element, ...; each names its table in attribute 1 and its family in the nfgenmsg
 * header), followed by one NFT_MSG_NEWGEN carrying the new generation and the PID and name of the
 * process that committed it. A transaction counts when one of its objects lies in `inet cnm` or
 * `bridge cnm` and its committer is not cnm itself (libnftables runs in the daemon's process, on its
 * main thread, so the kernel reports the daemon's PID).
 */
import { parseAttrs, readString, type NetlinkMessage } from '../kernel/netlink/codec.js';
import { TABLE_FAMILIES, TABLE_NAME, type TableFamily } from './compile.js';

const NFNL_SUBSYS_NFTABLES = 10;
const NFT_MSG_NEWGEN = 15;
const NFT_MSG_TRACE = 17;
const NFTA_GEN_ID = 1;
const NFTA_GEN_PROC_PID = 2;
const NFTA_GEN_PROC_NAME = 3;
/** Attribute 1 of every object message (NFTA_TABLE_NAME, NFTA_CHAIN_TABLE, NFTA_SET_ELEM_LIST_TABLE, ...). */
const OBJECT_TABLE_ATTR = 1;
const NFGENMSG_LENGTH = 4;
const FAMILY_NUMBERS: Record<TableFamily, number> = { inet: 1, bridge: 7 };

/** A transaction by someone else that changed cnm's tables. */
export interface ForeignChange {
  generation?: number;
  pid?: number;
  process?: string;
  /** Messages about cnm's tables in the transaction. */
  objects: number;
}

/**
 * Feed it the monitor's messages in order; it returns the foreign changes they complete. Holds the
 * count of cnm-table messages seen since the last NEWGEN (a transaction may span several datagrams).
 */
export class NftChangeFilter {
  private pending = 0;

  constructor(private readonly isOwnProcess: (pid: number) => boolean) {}

  feed(messages: readonly NetlinkMessage[]): ForeignChange[] {
    const changes: ForeignChange[] = [];
    for (const msg of messages) {
      if (msg.type >> 8 !== NFNL_SUBSYS_NFTABLES || msg.payload.length < NFGENMSG_LENGTH) continue;
      const kind = msg.type & 0xff;
      if (kind === NFT_MSG_TRACE) continue;
      const attrs = parseAttrs(msg.payload, NFGENMSG_LENGTH);
      if (kind !== NFT_MSG_NEWGEN) {
        if (isCnmTable(msg.payload.readUInt8(0), readString(attrs.get(OBJECT_TABLE_ATTR)))) this.pending++;
        continue;
      }
      const objects = this.pending;
      this.pending = 0;
      if (objects === 0) continue;
      const pid = readBe32(attrs.get(NFTA_GEN_PROC_PID));
      // No PID (a kernel before 4.13): treated as foreign, which costs one check, never a missed change.
      if (pid !== undefined && this.isOwnProcess(pid)) continue;
      changes.push({ generation: readBe32(attrs.get(NFTA_GEN_ID)), pid, process: readString(attrs.get(NFTA_GEN_PROC_NAME)), objects });
    }
    return changes;
  }

  /** Events were lost: whatever was pending is unknown now (the caller checks everything). */
  reset(): void {
    this.pending = 0;
  }
}

function isCnmTable(family: number, table: string | undefined): boolean {
  return table === TABLE_NAME && TABLE_FAMILIES.some((f) => FAMILY_NUMBERS[f] === family);
}

function readBe32(value: Buffer | undefined): number | undefined {
  return value !== undefined && value.length >= 4 ? value.readUInt32BE(0) : undefined;
}
