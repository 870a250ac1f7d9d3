import type { ComponentType } from 'preact';
import { can } from '../api/client';
import { href } from '../router';
import { AuditSection } from './admin/audit';
import { AutoAnalysisSection, EngineSection } from './admin/engine';
import { ForwardingSection } from './admin/forwarding';
import { IntegrationsSection } from './admin/integrations';
import { NodesSection } from './admin/nodes';
import { StorageSection } from './admin/storage';
import { UsersSection } from './admin/users';
import './admin/admin.css';

/**
 * The administration (issue 18 item 4, issue 19 item 4): one module per section under admin/.
 * A section shows only to a role holding the permission its API routes are guarded by, so what
 * the role may not do is not offered.
 */
const SECTIONS: Array<{ id: string; title: string; permission: string; Screen: ComponentType }> = [
  { id: 'users', title: 'Users and roles', permission: 'users:manage', Screen: UsersSection },
  { id: 'nodes', title: 'DICOM nodes', permission: 'nodes:manage', Screen: NodesSection },
  { id: 'forwarding', title: 'Forwarding and jobs', permission: 'nodes:manage', Screen: ForwardingSection },
  { id: 'engine', title: 'AI engine', permission: 'nodes:manage', Screen: EngineSection },
  { id: 'auto-analysis', title: 'Auto-analysis', permission: 'nodes:manage', Screen: AutoAnalysisSection },
  { id: 'integrations', title: 'Integrations', permission: 'nodes:manage', Screen: IntegrationsSection },
  { id: 'audit', title: 'Audit trail', permission: 'audit:read', Screen: AuditSection },
  { id: 'storage', title: 'Storage and database', permission: 'nodes:manage', Screen: StorageSection },
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
    <section aria-labelledby="admin-title" class="admin">
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
        <div key={current.id}>
          <h2>{current.title}</h2>
          <current.Screen />
        </div>
      ) : section ? (
        <p class="error" role="alert">
          There is no such section, or your role may not use it.
        </p>
      ) : (
        <p>Choose a section.</p>
      )}
    </section>
  );
}
