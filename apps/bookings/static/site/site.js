// The brand sites' only script: a form with data-confirm asks before it is sent (the Content-Security-Policy allows
// scripts from this site only, so no inline handlers).
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});
