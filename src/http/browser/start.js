// Starts Swagger UI on this service's OpenAPI document. The document's URL is relative to
// the page (/docs), so it is found under a path prefix too. No validator badge: it would
// send the document to an outside service.
window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: "none",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
