{{/* The environment every RadiantAI container gets: configuration only by environment (src/config.ts); secrets from the Secret. */}}
{{- define "radiant.env" -}}
- name: MODE
  value: online
- name: DATA_DIR
  value: /data
- name: TEMP_PATH
  value: /data/incoming
- name: HTTP_PORT
  value: {{ .Values.node.httpPort | quote }}
- name: DICOM_PORT
  value: {{ .Values.node.dicomPort | quote }}
- name: DICOM_AE_TITLE
  value: {{ .Values.node.aeTitle | quote }}
- name: DICOM_ALLOWED_AES
  value: {{ .Values.node.allowedAes | quote }}
- name: STORAGE_TYPE
  value: s3
- name: S3_BUCKET
  value: {{ .Values.storage.s3Bucket | quote }}
- name: S3_REGION
  value: {{ .Values.storage.s3Region | quote }}
- name: S3_ENDPOINT
  value: {{ .Values.storage.s3Endpoint | quote }}
- name: HTTP_TRUST_PROXY
  value: "true"
- name: JOB_WORKER_IN_SERVE
  value: "off"
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.name }}
      key: DATABASE_URL
- name: SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.name }}
      key: SECRET_KEY
- name: S3_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.name }}
      key: S3_ACCESS_KEY
- name: S3_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.name }}
      key: S3_SECRET_KEY
{{- end -}}

{{/* Non-root, read-only root filesystem, no privilege escalation: the image's user 10001. */}}
{{- define "radiant.securityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop: ["ALL"]
{{- end -}}
