import type { Db } from '../db/connection.js';

/** A remote DICOM node (migrations/005_remote_nodes.ts). */
export interface RemoteNode {
  id: number;
  aeTitle: string;
  host: string;
  port: number;
  tls: boolean;
  description: string | null;
  allowQueryRetrieve: boolean;
  stowUrl: string | null;
  /** Sent as the Authorization header to the STOW-RS destination; never shown by the API. */
  stowAuthorization: string | null;
}

export type RemoteNodeInput = Omit<RemoteNode, 'id' | 'stowAuthorization'> & { stowAuthorization?: string | null };

interface Row {
  id: number;
  ae_title: string;
  host: string;
  port: number;
  tls: boolean | number;
  description: string | null;
  allow_query_retrieve: boolean | number;
  stow_url: string | null;
  stow_authorization: string | null;
}

function fromRow(r: Row): RemoteNode {
  return {
    id: Number(r.id),
    aeTitle: r.ae_title,
    host: r.host,
    port: Number(r.port),
    tls: Boolean(r.tls),
    description: r.description,
    allowQueryRetrieve: Boolean(r.allow_query_retrieve),
    stowUrl: r.stow_url,
    stowAuthorization: r.stow_authorization ?? null,
  };
}

function toRow(n: Partial<RemoteNodeInput>): Partial<Row> {
  const out: Partial<Row> = {};
  if (n.aeTitle !== undefined) out.ae_title = n.aeTitle;
  if (n.host !== undefined) out.host = n.host;
  if (n.port !== undefined) out.port = n.port;
  if (n.tls !== undefined) out.tls = n.tls;
  if (n.description !== undefined) out.description = n.description;
  if (n.allowQueryRetrieve !== undefined) out.allow_query_retrieve = n.allowQueryRetrieve;
  if (n.stowUrl !== undefined) out.stow_url = n.stowUrl;
  if (n.stowAuthorization !== undefined) out.stow_authorization = n.stowAuthorization;
  return out;
}

export async function listRemoteNodes(db: Db): Promise<RemoteNode[]> {
  return ((await db('remote_nodes').orderBy('ae_title')) as Row[]).map(fromRow);
}

export async function getRemoteNode(db: Db, id: number): Promise<RemoteNode | undefined> {
  const r = (await db('remote_nodes').where({ id }).first()) as Row | undefined;
  return r ? fromRow(r) : undefined;
}

/** AE titles compare without their padding, case-sensitively (PS3.5: AE is case-sensitive). */
export async function findRemoteNodeByAe(db: Db, aeTitle: string): Promise<RemoteNode | undefined> {
  const r = (await db('remote_nodes').where({ ae_title: aeTitle.trim() }).first()) as Row | undefined;
  return r ? fromRow(r) : undefined;
}

export async function createRemoteNode(db: Db, n: RemoteNodeInput): Promise<RemoteNode> {
  const [row] = (await db('remote_nodes')
    .insert({ ...toRow(n), ae_title: n.aeTitle.trim() })
    .returning('*')) as Row[];
  return fromRow(row!);
}

export async function updateRemoteNode(db: Db, id: number, n: Partial<RemoteNodeInput>): Promise<RemoteNode | undefined> {
  const changed = await db('remote_nodes')
    .where({ id })
    .update({ ...toRow(n), updated_at: db.fn.now() });
  return changed ? getRemoteNode(db, id) : undefined;
}

export async function deleteRemoteNode(db: Db, id: number): Promise<boolean> {
  return (await db('remote_nodes').where({ id }).delete()) > 0;
}
