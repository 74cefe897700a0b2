"""The Azure ML backend: the Workspace contract over azure-ai-ml's ``MLClient``.

``open_azure_workspace`` (in ``connect``) finds the workspace and signs in;
``workspace.AzureWorkspace`` implements the contract; ``translate`` maps
entities; ``errors`` is the one place Azure's exceptions become byom's.
azure.ai.ml is imported only when an Azure workspace is opened (it takes
seconds), so the local CLI stays fast.
"""
