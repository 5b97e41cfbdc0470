// A view that is not built yet: its heading and an honest "coming in the next increment".
export function Placeholder({ title, what }: { title: string; what: string }) {
  return (
    <section data-testid="placeholder">
      <h1>{title}</h1>
      <p class="muted">{what}: coming in the next increment of the web app.</p>
    </section>
  );
}
