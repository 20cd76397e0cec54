-- Argo CD health check for imagemirror.dev/ImageMirror
-- (argocd-cm key: resource.customizations.health.imagemirror.dev_ImageMirror).
-- Rule, in order (docs/gitops.md explains why it differs from kstatus/Flux):
--   spec.suspend                                                       -> Suspended
--   no status yet, or status.observedGeneration < metadata.generation  -> Progressing
--   Stalled=True                                                       -> Degraded
--   Ready=False with a reason a human must fix (InvalidSpec, TagConflict,
--     CredentialsNotFound, AuthFailed, SourceNotFound)                 -> Degraded
--   Reconciling=True                                                   -> Progressing
--   Ready=True                                                         -> Healthy
--   anything else (RegistryError and other retried reasons)            -> Progressing
local hs = {}
local needsHuman = {
  InvalidSpec = true, TagConflict = true, CredentialsNotFound = true, AuthFailed = true, SourceNotFound = true,
}

local function condition(conditions, kind)
  if conditions == nil then return nil end
  for _, c in ipairs(conditions) do
    if c.type == kind then return c end
  end
  return nil
end

local function describe(c, fallback)
  if c == nil then return fallback end
  local msg = c.message
  if msg == nil or msg == "" then msg = fallback end
  if c.reason ~= nil and c.reason ~= "" then return c.reason .. ": " .. msg end
  return msg
end

local status = obj.status
local spec = obj.spec or {}
local generation = (obj.metadata or {}).generation

if spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "Mirror is suspended (spec.suspend)"
  return hs
end

if status == nil or status.conditions == nil or #status.conditions == 0 then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to reconcile"
  return hs
end

if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to observe generation " .. generation
  return hs
end

local ready = condition(status.conditions, "Ready")
local stalled = condition(status.conditions, "Stalled")
local reconciling = condition(status.conditions, "Reconciling")

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled, "Stalled")
  return hs
end

if ready ~= nil and ready.status == "False" and needsHuman[ready.reason] then
  hs.status = "Degraded"
  hs.message = describe(ready, "Not ready")
  return hs
end

if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = describe(reconciling, "Reconciling")
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready, "Synced")
  return hs
end

hs.status = "Progressing"
hs.message = describe(ready, "Waiting for the Ready condition")
return hs
