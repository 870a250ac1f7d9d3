/**
 * Who may do what: the one table every route, DICOMweb included, is checked against.
 * A route names the permission it needs; roles grant permissions. Nothing else decides access.
 */

export const ROLES = ['admin', 'radiologist', 'technician', 'viewer', 'service'] as const;
export type Role = (typeof ROLES)[number];

export const PERMISSIONS = [
  'images:read', // query and retrieve studies, series, instances, metadata (DICOMweb read, REST reads)
  'images:write', // store instances (STOW-RS, upload)
  'patients:write', // create and update patients through the API
  'patients:delete', // delete patients (and, with cascade, their studies)
  'analysis:run', // start, cancel AI analyses
  'reports:sign', // review, edit and sign AI drafts
  'users:manage', // create users, change roles
  'audit:read', // read the audit trail
  'nodes:manage', // configure remote DICOM nodes and forwarding rules
] as const;
export type Permission = (typeof PERMISSIONS)[number];

export const ROLE_PERMISSIONS: Readonly<Record<Role, ReadonlyArray<Permission>>> = {
  admin: PERMISSIONS,
  radiologist: ['images:read', 'images:write', 'patients:write', 'analysis:run', 'reports:sign'],
  technician: ['images:read', 'images:write', 'patients:write'],
  viewer: ['images:read'],
  // Machine clients (PACS bridges, AI workers): move images and run analyses, never sign.
  service: ['images:read', 'images:write', 'analysis:run'],
};

export function can(role: Role, permission: Permission): boolean {
  return ROLE_PERMISSIONS[role].includes(permission);
}

export function isRole(s: string): s is Role {
  return (ROLES as readonly string[]).includes(s);
}
