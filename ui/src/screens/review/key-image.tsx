import { useEffect, useState } from 'preact/hooks';
import { ApiError } from '../../api/client';
import { fetchBlob, viewerLinkOf, type ViewerLink } from '../../api/reports';

/**
 * A finding's key image (the node draws the finding's box on it), fetched with the token in the
 * header and shown through an object URL. It links to OHIF on that slice, in a new tab; OHIF asks
 * for its own sign-in there when the tab has none (the token is never put in the link).
 */
export function KeyImage({ reportId, number, version, label }: { reportId: number; number: number; version: number; label: string }) {
  const [src, setSrc] = useState<string | null>(null);
  const [link, setLink] = useState<ViewerLink | null>(null);
  const [state, setState] = useState<'loading' | 'none' | 'error' | 'ready'>('loading');
  useEffect(() => {
    let url: string | null = null;
    let gone = false;
    setState('loading');
    setSrc(null);
    (async () => {
      try {
        const [{ blob }, where] = await Promise.all([
          fetchBlob(`/api/reports/${reportId}/findings/${number}/key-image`),
          viewerLinkOf(reportId, number),
        ]);
        if (gone) return;
        url = URL.createObjectURL(blob);
        setSrc(url);
        setLink(where);
        setState('ready');
      } catch (err) {
        if (!gone) setState(err instanceof ApiError && err.status === 404 ? 'none' : 'error');
      }
    })();
    return () => {
      gone = true;
      if (url) URL.revokeObjectURL(url);
    };
  }, [reportId, number, version]);

  if (state === 'loading')
    return (
      <p class="key-image placeholder" role="status">
        Loading the key image…
      </p>
    );
  if (state === 'none') return <p class="key-image placeholder">No key image: the finding names no image.</p>;
  if (state === 'error' || !src || !link) return <p class="key-image placeholder error">The key image could not be loaded.</p>;
  const slice = link.slice_number ? `slice ${link.slice_number}${link.slice_count ? ` of ${link.slice_count}` : ''}` : 'its image';
  return (
    <figure class="key-image">
      <a href={link.viewer_path} target="_blank" rel="noopener noreferrer" class="to-viewer">
        <img src={src} alt={`Finding ${number} (${label}), ${slice}, with the finding's box drawn`} />
        <span class="sub">Open in the viewer, {slice} (new tab)</span>
      </a>
      <figcaption class="sub">{link.caption}</figcaption>
    </figure>
  );
}
