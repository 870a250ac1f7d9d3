import { can } from '../api/client';
import { href } from '../router';

/**
 * PLACEHOLDER for the administration screens (issue 18, item 4). The sections and who may see
 * them are set here; the admin engineer fills each section (one module per section).
 */
const SECTIONS: Array<{ id: string; title: string; permission: string }> = [
  { id: 'users', title: 'Users and roles', permission: 'users:manage' },
  { id: 'nodes', title: 'DICOM nodes', permission: 'nodes:manage' },
  { id: 'forwarding', title: 'Forwarding and jobs', permission: 'nodes:manage' },
  { id: 'engine', title: 'AI engine', permission: 'users:manage' },
  { id: 'audit', title: 'Audit trail', permission: 'audit:read' },
  { id: 'storage', title: 'Storage and database', permission: 'users:manage' },
];

/** Whether the user may see any administration section (the navigation shows the link only then). */
export function mayAdminister(): boolean {
  return SECTIONS.some((s) => can(s.permission));
}

export function AdminScreen({ section }: { section: string | null }) {
  const visible = SECTIONS.filter((s) => can(s.permission));
  if (!visible.length) {
    return (
      <section>
        <h1>Administration</h1>
        <p class="error" role="alert">
          Your role may not administer this node.
        </p>
      </section>
    );
  }
  const current = visible.find((s) => s.id === section);
  return (
    <section aria-labelledby="admin-title">
      <h1 id="admin-title">Administration</h1>
      <nav aria-label="Administration">
        <ul class="tabs">
          {visible.map((s) => (
            <li key={s.id}>
              <a href={href({ name: 'admin', section: s.id })} aria-current={s.id === current?.id ? 'page' : undefined}>
                {s.title}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      {current ? (
        <div>
          <h2>{current.title}</h2>
          <p class="note">This section is not built yet.</p>
        </div>
      ) : (
        <p>Choose a section.</p>
      )}
    </section>
  );
}
