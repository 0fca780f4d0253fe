#!/bin/bash
# On-start lifecycle configuration for a SageMaker notebook instance that runs this workshop
# (for facilitators: attendees then need no install step at all).
#
# On a notebook instance the kernel `conda_python3` is the conda environment `python3`, so a
# terminal `pip install` (another environment) does not reach the notebooks, and SageMaker
# refreshes the environments at every stop and start, so an install does not last. This script
# installs the workshop's requirements.txt into `python3` at every start, as AWS documents:
#   https://docs.aws.amazon.com/sagemaker/latest/dg/nbi-add-external.html
#   https://docs.aws.amazon.com/sagemaker/latest/dg/nbi-lifecycle-config-install.html
# (Notebook 01's first cell does the same with %pip when no lifecycle configuration is attached.)
#
# Use it: associate this repository with the notebook instance (it is cloned under
# /home/ec2-user/SageMaker/), then create a lifecycle configuration with this file as its
# on-start script and attach it to the instance:
#   aws sagemaker create-notebook-instance-lifecycle-config \
#       --notebook-instance-lifecycle-config-name bedrock-finetuning-workshop \
#       --on-start Content="$(base64 -w0 notebooks/lifecycle/on-start.sh)"
#   aws sagemaker update-notebook-instance --notebook-instance-name <name> \
#       --lifecycle-config-name bedrock-finetuning-workshop        # while the instance is stopped
# Its output goes to CloudWatch Logs, group /aws/sagemaker/NotebookInstances,
# stream <instance name>/LifecycleConfigOnStart; pip's output to the log file below.
#
# Lifecycle scripts run as root and must finish within 5 minutes, or the instance fails to
# start; so the install runs as ec2-user (the user Jupyter runs as) in the background.
set -eu

ENVIRONMENT=python3                      # the conda environment behind the conda_python3 kernel
BACKEND=aws                              # WORKSHOP_BACKEND for every kernel; "" keeps the sandbox default
SAGEMAKER_DIR=${SAGEMAKER_DIR:-/home/ec2-user/SageMaker}  # the only directory that persists across stop and start
CONDA_DIR=${CONDA_DIR:-/home/ec2-user/anaconda3}         # (both overridable only for the repository's test)
LOG="$SAGEMAKER_DIR/.workshop-install.log"

repo=""
for dir in "$SAGEMAKER_DIR"/*/; do
    if [ -f "${dir}requirements.txt" ] && [ -f "${dir}notebooks/01_permissions.ipynb" ]; then
        repo="${dir%/}"
        break
    fi
done
if [ -z "$repo" ]; then
    echo "bedrock-finetuning-workshop: no clone of the repository under $SAGEMAKER_DIR; nothing installed"
    exit 0  # never stop the instance from starting
fi
echo "bedrock-finetuning-workshop: installing $repo/requirements.txt into $ENVIRONMENT (log: $LOG)"

# The backend switch for every kernel, as an IPython startup file (our choice: the home directory
# outside SageMaker/ is reset at each start, so it is written again each time; setdefault lets a
# %env in a notebook still override it).
if [ -n "$BACKEND" ]; then
    sudo -u ec2-user -i <<EOF
mkdir -p ~/.ipython/profile_default/startup
printf 'import os\nos.environ.setdefault("WORKSHOP_BACKEND", "%s")\n' "$BACKEND" \
    > ~/.ipython/profile_default/startup/00-bedrock-workshop.py
EOF
fi

sudo -u ec2-user -i <<EOF
nohup bash -c 'source "$CONDA_DIR/bin/activate" "$ENVIRONMENT" \
    && pip install --quiet --disable-pip-version-check -r "$repo/requirements.txt" \
    && echo "requirements installed into $ENVIRONMENT"' > "$LOG" 2>&1 &
EOF
