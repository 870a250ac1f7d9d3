import { bytes, count, LoadState, useLoad } from './common';

/** Storage and database figures: what the index holds, the storage backend with its free disk, the database's size. */

interface StorageView {
  index: { patients: number; studies: number; series: number; instances: number; bytes: number };
  storage: {
    backend: string;
    root?: string;
    bucket?: string;
    container?: string;
    disk: { free_bytes: number; total_bytes: number } | null;
  };
  database: { dialect: string; bytes: number | null };
}

export function StorageSection() {
  const res = useLoad<StorageView>('/api/system/storage', 'read the storage figures');
  return (
    <LoadState res={res} what="the storage figures">
      {(s) => {
        const disk = s.storage.disk;
        const used = disk ? Math.round(((disk.total_bytes - disk.free_bytes) / Math.max(1, disk.total_bytes)) * 100) : null;
        return (
          <div class="cards">
            <div class="card">
              <h3>Index</h3>
              <dl class="summary" aria-label="Index figures">
                <dt>Patients</dt>
                <dd>{count(s.index.patients)}</dd>
                <dt>Studies</dt>
                <dd>{count(s.index.studies)}</dd>
                <dt>Series</dt>
                <dd>{count(s.index.series)}</dd>
                <dt>Instances</dt>
                <dd>{count(s.index.instances)}</dd>
                <dt>Stored</dt>
                <dd>{bytes(s.index.bytes)}</dd>
              </dl>
            </div>
            <div class="card">
              <h3>Storage</h3>
              <dl class="summary" aria-label="Storage figures">
                <dt>Backend</dt>
                <dd>{s.storage.backend}</dd>
                <dt>{s.storage.root ? 'Root' : s.storage.bucket ? 'Bucket' : 'Container'}</dt>
                <dd class="mono">{s.storage.root ?? s.storage.bucket ?? s.storage.container ?? '—'}</dd>
                <dt>Free disk</dt>
                <dd>{disk ? `${bytes(disk.free_bytes)} of ${bytes(disk.total_bytes)}` : 'not known for object storage'}</dd>
              </dl>
              {used !== null && <meter min={0} max={100} value={used} high={85} aria-label={`Disk ${used}% used`} />}
            </div>
            <div class="card">
              <h3>Database</h3>
              <dl class="summary" aria-label="Database figures">
                <dt>Dialect</dt>
                <dd>{s.database.dialect === 'postgresql' ? 'PostgreSQL' : 'SQLite'}</dd>
                <dt>Size</dt>
                <dd>{bytes(s.database.bytes)}</dd>
              </dl>
            </div>
          </div>
        );
      }}
    </LoadState>
  );
}
