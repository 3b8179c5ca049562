// Starts Swagger UI on the schema named by the page; kept out of the page itself so that
// the page's content security policy can forbid inline scripts.
window.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({ url: root.dataset.openapiUrl, dom_id: "#swagger-ui" });
});
